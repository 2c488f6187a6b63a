package iptables

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cnilab/cnilab/pkg/command"
	"github.com/cnilab/cnilab/pkg/proxy"
)

func TestParseBackend(t *testing.T) {
	cases := []struct {
		out, want string
		ok        bool
	}{
		{"iptables v1.8.9 (nf_tables)\n", NFT, true},
		{"iptables v1.8.9 (legacy)\n", Legacy, true},
		{"iptables v1.8.7 (nf_tables): chain `OUTPUT' in table `filter' is incompatible\n", "", false},
		{"iptables v1.6.1\n", "", false}, // no mode printed: not guessed
		{"", "", false},
	}
	for _, tc := range cases {
		got, err := ParseBackend(tc.out)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBackend(%q) = %q, %v; want %q (ok %v)", tc.out, got, err, tc.want, tc.ok)
		}
	}
}

// The proxy is named by the backend its binaries report, asked in the
// node namespace; a binary that is missing or reports the other backend
// is an error, not a silent "iptables".
func TestNewExecNamesTheBackend(t *testing.T) {
	cases := []struct {
		name, binaries, stdout string
		err                    error
		want                   string
		wantErr                string
	}{
		{"system default on nft", "", "iptables v1.8.9 (nf_tables)\n", nil, NFT, ""},
		{"system default on legacy", "iptables", "iptables v1.8.9 (legacy)\n", nil, Legacy, ""},
		{"explicit legacy", Legacy, "iptables v1.8.9 (legacy)\n", nil, Legacy, ""},
		{"explicit nft", NFT, "iptables v1.8.9 (nf_tables)\n", nil, NFT, ""},
		{"legacy binary reports nft", Legacy, "iptables v1.8.9 (nf_tables)\n", nil, "", "iptables-legacy -V says it drives iptables-nft"},
		{"binary missing", NFT, "", errors.New("executable file not found"), "", "iptables-nft -V"},
		{"unreadable version", "", "iptables v1.6.1\n", nil, "", "no (nf_tables) or (legacy) mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bin := tc.binaries
			if bin == "" {
				bin = "iptables"
			}
			f := &command.Fake{Responses: map[string]command.FakeResponse{bin: {Stdout: tc.stdout, Err: tc.err}}}
			p, err := NewExec(proxy.Target{Netns: []string{"/run/netns/cnl-x-node0"}, Runner: f, IPTables: tc.binaries})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != tc.want {
				t.Errorf("name %q, want %q", p.Name(), tc.want)
			}
			if c := f.Calls[0]; c.Netns != "/run/netns/cnl-x-node0" || c.Name != bin || strings.Join(c.Args, " ") != "-V" {
				t.Errorf("asked %+v, want %s -V in the node namespace", c, bin)
			}
		})
	}
	if b, err := DetectBackend(context.Background(), &command.Fake{Responses: map[string]command.FakeResponse{"iptables": {Stdout: "iptables v1.8.9 (legacy)"}}}, "", "n"); err != nil || b != Legacy {
		t.Errorf("DetectBackend default binary: %q %v", b, err)
	}
	if Other(NFT) != Legacy || Other(Legacy) != NFT {
		t.Error("Other")
	}
}
