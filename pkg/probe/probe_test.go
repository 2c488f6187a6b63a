package probe

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseConnectResult(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"good", `{"target":"1.2.3.4:80","mode":"latency","attempts":2,"ok":2,"failed":0,"elapsed_s":0.1,"samples_us":[10,20],"stopped":"count"}`, true},
		{"rate", `{"target":"1.2.3.4:80","mode":"rate","attempts":3,"ok":2,"failed":1,"elapsed_s":1,"stopped":"duration","errors":{"connect: timeout":1}}`, true},
		{"no attempts", `{"target":"1.2.3.4:80","mode":"latency","attempts":0,"ok":0,"failed":0,"stopped":"duration"}`, false},
		{"samples missing", `{"target":"1.2.3.4:80","mode":"latency","attempts":2,"ok":2,"failed":0,"samples_us":[10],"stopped":"count"}`, false},
		{"unknown field", `{"target":"x","attempts":1,"ok":1,"bogus":1}`, false},
		{"garbage", `connect: permission denied`, false},
	}
	for _, tc := range tests {
		if _, err := ParseConnectResult([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestMainUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"bogus"}, 1},
		{[]string{"connect", "-target", "not-an-addr"}, 2},
		{[]string{"connect", "-target", "127.0.0.1:1", "-count", "0"}, 2},
		{[]string{"connect", "-target", "127.0.0.1:1", "-duration", "1h"}, 2},
		{[]string{"serve"}, 2},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if got := Main(tc.args, &out, &errb); got != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, got, tc.code, errb.String())
		}
	}
}

// TestConnectRefused runs the probe against a closed local port: every
// attempt fails, and the failures are counted, not hidden.
func TestConnectRefused(t *testing.T) {
	var out bytes.Buffer
	if err := RunConnectProbe([]string{"-target", "127.0.0.1:1", "-count", "3", "-duration", "2s"}, &out); err != nil {
		t.Fatal(err)
	}
	r, err := ParseConnectResult(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if r.Attempts != 3 || r.Failed != 3 || r.OK != 0 || !strings.Contains(strings.Join(keys(r.Errors), ","), "refused") {
		t.Errorf("%+v", r)
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
