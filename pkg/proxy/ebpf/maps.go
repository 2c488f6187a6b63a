package ebpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/cnilab/cnilab/pkg/proxy"
)

// Layouts follow Cilium's lb4 maps (reference/datapaths.md §10.4), all
// 12 bytes:
//
//	service key   {address be32, dport be16, backend_slot u16, proto u8, scope u8, pad u16}
//	service value {backend_id u32 | 0, count u16, rev_nat_index u16, flags u8, flags2 u8, pad u16}
//	backend key   backend_id u32
//	backend value {address be32, port be16, proto u8, flags u8, cluster_id u16, pad u16}
//
// Slot 0 of a service is its frontend entry carrying the backend count;
// slots 1..count carry backend ids.
const (
	svcKeySize   = 12
	svcValueSize = 12
	beKeySize    = 4
	beValueSize  = 12
)

type (
	svcKey   [svcKeySize]byte
	svcValue [svcValueSize]byte
	beKey    [beKeySize]byte
	beValue  [beValueSize]byte
)

func protoNum(p proxy.Protocol) uint8 {
	if p == proxy.UDP {
		return 17
	}
	return 6
}

func makeSvcKey(s proxy.Service, slot uint16) svcKey {
	var k svcKey
	a := s.ClusterIP.As4()
	copy(k[0:4], a[:])
	binary.BigEndian.PutUint16(k[4:6], s.Port)
	binary.NativeEndian.PutUint16(k[6:8], slot)
	k[8] = protoNum(s.Protocol)
	return k
}

func makeSvcValue(backendID uint32, count, revNat uint16) svcValue {
	var v svcValue
	binary.NativeEndian.PutUint32(v[0:4], backendID)
	binary.NativeEndian.PutUint16(v[4:6], count)
	binary.NativeEndian.PutUint16(v[6:8], revNat)
	return v
}

func makeBeKey(id uint32) beKey {
	var k beKey
	binary.NativeEndian.PutUint32(k[:], id)
	return k
}

func makeBeValue(e proxy.Endpoint, p proxy.Protocol) beValue {
	var v beValue
	a := e.IP.As4()
	copy(v[0:4], a[:])
	binary.BigEndian.PutUint16(v[4:6], e.Port)
	v[6] = protoNum(p)
	return v
}

// Batch is one change to the two maps, applied in this order: backend
// puts, service puts, service deletes, backend deletes. Callers order the
// entries inside each list so a concurrent connect() never finds a slot
// whose backend is missing (Cilium's order).
type Batch struct {
	BackendPuts []BackendEntry
	ServicePuts []ServiceEntry
	ServiceDels []svcKey
	BackendDels []beKey
}

// ServiceEntry is one services-map entry.
type ServiceEntry struct {
	Key   svcKey
	Value svcValue
}

// BackendEntry is one backends-map entry.
type BackendEntry struct {
	Key   beKey
	Value beValue
}

// Maps is where the LB state goes: kernel BPF maps (KernelMaps) or the
// in-memory Fake.
type Maps interface {
	Apply(b Batch) error
	// Len returns the number of entries in the services and backends maps.
	Len() (services, backends int, err error)
}

// Fake is an in-memory Maps: it holds the entries, applies a batch all or
// nothing (a delete of a missing key or an overflow rejects the batch) and
// prints itself decoded, for golden files.
type Fake struct {
	mu                    sync.Mutex
	svc                   map[svcKey]svcValue
	be                    map[beKey]beValue
	MaxServices, MaxBacks int
	Applies               int
	LastBatch             Batch
	// TC lists the interfaces the TC path was attached to, in order.
	TC []TCAttachment
}

// AttachTC implements TCAttacher by recording the interfaces.
func (f *Fake) AttachTC(ifaces []TCAttachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.TC = append(f.TC, ifaces...)
	return nil
}

// NewFake returns empty fake maps with the given capacities.
func NewFake(maxServices, maxBackends int) *Fake {
	return &Fake{svc: map[svcKey]svcValue{}, be: map[beKey]beValue{}, MaxServices: maxServices, MaxBacks: maxBackends}
}

// Apply implements Maps.
func (f *Fake) Apply(b Batch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	svc := make(map[svcKey]svcValue, len(f.svc)+len(b.ServicePuts))
	for k, v := range f.svc {
		svc[k] = v
	}
	be := make(map[beKey]beValue, len(f.be)+len(b.BackendPuts))
	for k, v := range f.be {
		be[k] = v
	}
	for _, e := range b.BackendPuts {
		be[e.Key] = e.Value
	}
	for _, e := range b.ServicePuts {
		svc[e.Key] = e.Value
	}
	for _, k := range b.ServiceDels {
		if _, ok := svc[k]; !ok {
			return fmt.Errorf("delete missing service entry %s", fmtSvcKey(k))
		}
		delete(svc, k)
	}
	for _, k := range b.BackendDels {
		if _, ok := be[k]; !ok {
			return fmt.Errorf("delete missing backend %d", binary.NativeEndian.Uint32(k[:]))
		}
		delete(be, k)
	}
	if len(svc) > f.MaxServices || len(be) > f.MaxBacks {
		return fmt.Errorf("map full: %d services (max %d), %d backends (max %d)", len(svc), f.MaxServices, len(be), f.MaxBacks)
	}
	// Every slot must point at a backend that exists.
	for k, v := range svc {
		slot := binary.NativeEndian.Uint16(k[6:8])
		if slot == 0 {
			continue
		}
		if _, ok := be[beKey(v[0:4])]; !ok {
			return fmt.Errorf("service entry %s points at missing backend %d", fmtSvcKey(k), binary.NativeEndian.Uint32(v[0:4]))
		}
	}
	f.svc, f.be = svc, be
	f.Applies++
	f.LastBatch = b
	return nil
}

// Len implements Maps.
func (f *Fake) Len() (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.svc), len(f.be), nil
}

func fmtSvcKey(k svcKey) string {
	ip := netip.AddrFrom4([4]byte(k[0:4]))
	return fmt.Sprintf("%v:%d/%d slot %d", ip, binary.BigEndian.Uint16(k[4:6]), k[8], binary.NativeEndian.Uint16(k[6:8]))
}

func fmtBeValue(v beValue) string {
	ip := netip.AddrFrom4([4]byte(v[0:4]))
	return fmt.Sprintf("%v:%d/%d", ip, binary.BigEndian.Uint16(v[4:6]), v[6])
}

// Dump prints both maps decoded and sorted.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for k, v := range f.svc {
		lines = append(lines, fmt.Sprintf("service %s -> backend_id %d count %d rev_nat %d",
			fmtSvcKey(k), binary.NativeEndian.Uint32(v[0:4]), binary.NativeEndian.Uint16(v[4:6]), binary.NativeEndian.Uint16(v[6:8])))
	}
	sort.Strings(lines)
	var bl []string
	for k, v := range f.be {
		bl = append(bl, fmt.Sprintf("backend %6d -> %s", binary.NativeEndian.Uint32(k[:]), fmtBeValue(v)))
	}
	sort.Strings(bl)
	return strings.Join(append(lines, bl...), "\n") + "\n"
}
