package cli

import "testing"

func TestSecondsFlag(t *testing.T) {
	cases := []struct {
		in   string
		want int
		bad  bool
	}{
		{in: "2s", want: 2}, {in: "2m", want: 120}, {in: "1m30s", want: 90}, {in: "10", want: 10}, {in: "1h", want: 3600},
		{in: "0", bad: true}, {in: "0s", bad: true}, {in: "1.5s", bad: true}, {in: "48h", bad: true}, {in: "-3s", bad: true}, {in: "-3", bad: true}, {in: "ten", bad: true}, {in: "500ms", bad: true},
	}
	for _, tc := range cases {
		var s Seconds
		err := s.Set(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted as %d s", tc.in, s.N)
			}
			continue
		}
		if err != nil || s.N != tc.want {
			t.Errorf("%q → %d, %v; want %d", tc.in, s.N, err, tc.want)
		}
	}
}

func TestCountFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		bad  bool
	}{{in: "3", want: 3}, {in: "1", want: 1}, {in: "0", bad: true}, {in: "-2", bad: true}, {in: "x", bad: true}, {in: "2.5", bad: true}} {
		var c Count
		err := c.Set(tc.in)
		if tc.bad != (err != nil) || (!tc.bad && c.N != tc.want) {
			t.Errorf("%q → %d, %v", tc.in, c.N, err)
		}
	}
}
