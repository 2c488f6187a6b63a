package throughput

import (
	"slices"
	"testing"
)

func TestParseAllowedCPUs(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   []int
		bad    bool
	}{
		{status: "Name:\tcat\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n", want: []int{0, 1}},
		{status: "Cpus_allowed_list:\t0,2-4,7\n", want: []int{0, 2, 3, 4, 7}},
		{status: "Cpus_allowed_list:\t5\n", want: []int{5}},
		{status: "Name:\tcat\n", bad: true},
		{status: "Cpus_allowed_list:\t\n", bad: true},
		{status: "Cpus_allowed_list:\t3-1\n", bad: true},
		{status: "Cpus_allowed_list:\tff\n", bad: true},
	} {
		got, err := parseAllowedCPUs(tc.status)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted as %v", tc.status, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q → %v, %v; want %v", tc.status, got, err, tc.want)
		}
	}
}
