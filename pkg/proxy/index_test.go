package proxy

import (
	"net/netip"
	"strings"
	"testing"
)

func svc(name, ip string, port uint16) Service {
	return Service{Namespace: "ns", Name: name, PortName: "p", ClusterIP: netip.MustParseAddr(ip), Port: port, Protocol: TCP,
		Endpoints: []Endpoint{{IP: netip.MustParseAddr("10.1.0.1"), Port: 8080}}}
}

func TestIndexCheck(t *testing.T) {
	x := NewIndex()
	c, err := x.Check([]Service{svc("a", "10.96.0.1", 80), svc("b", "10.96.0.2", 80)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	x.Apply(c)
	tests := []struct {
		name    string
		upsert  []Service
		remove  []string
		wantErr string
		wantUp  int
		wantRm  int
	}{
		{"add", []Service{svc("c", "10.96.0.3", 80)}, nil, "", 1, 0},
		{"replace", []Service{svc("a", "10.96.0.1", 81)}, nil, "", 1, 0},
		{"invalid", []Service{svc("c", "10.96.0.3", 0)}, nil, "port 0", 0, 0},
		{"twice", []Service{svc("c", "10.96.0.3", 80), svc("c", "10.96.0.4", 80)}, nil, "listed twice", 0, 0},
		{"frontend taken", []Service{svc("c", "10.96.0.1", 80)}, nil, "used by service ns/a:p", 0, 0},
		{"frontend taken twice in the change", []Service{svc("c", "10.96.0.5", 80), svc("d", "10.96.0.5", 80)}, nil, "used by service", 0, 0},
		{"frontend freed by removal", []Service{svc("c", "10.96.0.1", 80)}, []string{"ns/a:p"}, "", 1, 1},
		{"frontend freed by a move", []Service{svc("c", "10.96.0.1", 80), svc("a", "10.96.0.9", 80)}, nil, "", 2, 0},
		{"removal wins", []Service{svc("a", "10.96.0.1", 0)}, []string{"ns/a:p"}, "", 0, 1},
		{"unknown removal ignored", nil, []string{"ns/zz:p"}, "", 0, 0},
	}
	for _, tc := range tests {
		c, err := x.Check(tc.upsert, tc.remove)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(c.Upsert) != tc.wantUp || len(c.Remove) != tc.wantRm {
			t.Errorf("%s: %+v, %v", tc.name, c, err)
		}
	}
	if x.Len() != 2 {
		t.Errorf("Check changed the index: %d services", x.Len())
	}
}

// TestIndexValidatesOnlyTheChange: a service already in the index is not
// validated again, however many there are (an invalid one smuggled in
// with Apply is not noticed by a Check that does not touch it).
func TestIndexValidatesOnlyTheChange(t *testing.T) {
	x := NewIndex()
	bad := svc("bad", "10.96.0.1", 0)
	x.Apply(Change{Upsert: []Service{bad}})
	if _, err := x.Check([]Service{svc("good", "10.96.0.2", 80)}, nil); err != nil {
		t.Errorf("Check validated a service outside the change: %v", err)
	}
}

func TestIndexIPUsers(t *testing.T) {
	x := NewIndex()
	a, b := svc("a", "10.96.0.1", 80), svc("b", "10.96.0.1", 81)
	c, _ := x.Check([]Service{a, b}, nil)
	x.Apply(c)
	ip := netip.MustParseAddr("10.96.0.1")
	if x.IPUsers(ip) != 2 {
		t.Fatalf("IPUsers = %d", x.IPUsers(ip))
	}
	moved := svc("b", "10.96.0.2", 81)
	c, err := x.Check([]Service{moved}, []string{"ns/a:p"})
	if err != nil {
		t.Fatal(err)
	}
	after := x.IPUsersAfter(c)
	if after(ip) != 0 || after(moved.ClusterIP) != 1 {
		t.Errorf("after: %d on %v, %d on %v", after(ip), ip, after(moved.ClusterIP), moved.ClusterIP)
	}
	x.Apply(c)
	if x.IPUsers(ip) != 0 || x.IPUsers(moved.ClusterIP) != 1 || x.Len() != 1 {
		t.Errorf("applied: %d, %d, %d services", x.IPUsers(ip), x.IPUsers(moved.ClusterIP), x.Len())
	}
	if got := x.Services(); len(got) != 1 || got[0].ClusterIP != moved.ClusterIP {
		t.Errorf("Services = %+v", got)
	}
}
