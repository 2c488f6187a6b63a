package iperf

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// The testdata files are real iperf3 3.12 --json captures taken between two
// network namespaces on a veth pair.
func TestParseCaptures(t *testing.T) {
	cases := []struct {
		file        string
		proto       Protocol
		streams     int
		minGbps     float64
		retransmits bool
	}{
		{"tcp-1stream.json", TCP, 1, 1, true},
		{"tcp-8streams.json", TCP, 8, 1, true},
		{"udp-1stream.json", UDP, 1, 0.1, false},
		{"udp-8streams.json", UDP, 8, 0.1, false},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if r.Protocol != tc.proto || r.Streams != tc.streams {
				t.Errorf("protocol %s × %d, want %s × %d", r.Protocol, r.Streams, tc.proto, tc.streams)
			}
			if r.Received.Gbps() < tc.minGbps {
				t.Errorf("received %.2f Gbit/s", r.Received.Gbps())
			}
			if r.Seconds < 0.9 || r.Seconds > 1.2 {
				t.Errorf("seconds %.3f, want ≈1 (omit excluded)", r.Seconds)
			}
			if tc.proto == UDP && (r.LostPercent < 0 || r.JitterMs <= 0) {
				t.Errorf("UDP loss %.3f%% jitter %.4f ms", r.LostPercent, r.JitterMs)
			}
		})
	}
	// Spot-check exact figures against the capture.
	data, _ := os.ReadFile("testdata/tcp-1stream.json")
	r, _ := Parse(data)
	if r.Received != 21886999434.25911 || r.Retransmits != 19428 {
		t.Errorf("tcp-1stream: %v bit/s, %d retransmits", float64(r.Received), r.Retransmits)
	}
	data, _ = os.ReadFile("testdata/udp-1stream.json")
	r, _ = Parse(data)
	if r.Received != 2758806786.8199377 || r.LostPercent != 1.4470435619533832 {
		t.Errorf("udp-1stream: %v bit/s, %v%% lost", float64(r.Received), r.LostPercent)
	}
}

func TestParseErrors(t *testing.T) {
	unreachable, _ := os.ReadFile("testdata/error-unreachable.json")
	tcp, _ := os.ReadFile("testdata/tcp-1stream.json")
	cases := map[string]struct {
		data []byte
		want string
	}{
		"iperf3 error":     {unreachable, "No route to host"},
		"not json":         {[]byte("iperf3: error - unable to connect"), "not JSON"},
		"truncated":        {tcp[:len(tcp)/2], "not JSON"},
		"no retransmits":   {[]byte(strings.Replace(string(tcp), `"retransmits"`, `"retrans"`, -1)), "retransmits"},
		"no sum_received":  {[]byte(strings.Replace(string(tcp), `"sum_received"`, `"x"`, 1)), "sum_received"},
		"zero throughput":  {[]byte(`{"start":{"test_start":{"protocol":"TCP","num_streams":1}},"end":{"sum_sent":{"seconds":1,"bits_per_second":0,"retransmits":0},"sum_received":{"seconds":1,"bits_per_second":0}}}`), "no data crossed"},
		"empty":            {nil, "not JSON"},
		"unknown protocol": {[]byte(`{"start":{"test_start":{"protocol":"SCTP","num_streams":1}},"end":{"sum_sent":{"seconds":1,"bits_per_second":1},"sum_received":{"seconds":1,"bits_per_second":1}}}`), "SCTP"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Parse(unreachable); !errors.Is(err, ErrIperf) {
		t.Errorf("iperf3's own error is not ErrIperf: %v", err)
	}
}

func TestClientArgs(t *testing.T) {
	got := strings.Join(ClientArgs{Server: "10.0.0.2", Port: 5201, Protocol: UDP, Streams: 8, Seconds: 60, Omit: 1}.Args(), " ")
	for _, want := range []string{"--json", "-c 10.0.0.2", "-t 60", "-O 1", "-P 8", "-u -b 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if strings.Contains(strings.Join(ClientArgs{Server: "x", Protocol: TCP, Streams: 1, Seconds: 1}.Args(), " "), "-P") {
		t.Error("single stream passes -P")
	}
}

func TestParseVersion(t *testing.T) {
	cases := []struct {
		out  string
		want Version
		bad  bool
	}{
		// Debian bookworm's iperf3, as it prints itself.
		{out: "iperf 3.12 (cJSON 1.7.15)\nLinux host 6.18.44 #1 SMP x86_64\nOptional features available: CPU affinity setting\n", want: Version{3, 12}},
		{out: "iperf 3.9 (cJSON 1.7.13)\n", want: Version{3, 9}},
		{out: "iperf 3.17.1 (cJSON 1.7.15)\n", want: Version{3, 17}},
		{out: "iperf3: unknown option\n", bad: true},
		{out: "", bad: true},
	}
	for _, tc := range cases {
		v, err := ParseVersion([]byte(tc.out))
		if tc.bad {
			if err == nil {
				t.Errorf("%q parsed as %v", tc.out, v)
			}
			continue
		}
		if err != nil || v != tc.want {
			t.Errorf("%q → %v, %v; want %v", tc.out, v, err, tc.want)
		}
	}
	if (Version{3, 9}).AtLeast(MinUDP.Major, MinUDP.Minor) || !(Version{3, 12}).AtLeast(MinUDP.Major, MinUDP.Minor) {
		t.Error("AtLeast disagrees with the UDP floor 3.11")
	}
}

func TestParseRejectsLossOutsideRange(t *testing.T) {
	data, err := os.ReadFile("testdata/udp-1stream.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["end"].(map[string]any)["sum"].(map[string]any)["lost_percent"] = 104.2
	bad, _ := json.Marshal(doc)
	if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "outside 0–100") {
		t.Errorf("loss 104.2 %%: %v", err)
	}
}
