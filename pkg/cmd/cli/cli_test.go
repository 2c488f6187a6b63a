package cli

import "testing"

func TestSecondsFlag(t *testing.T) {
	cases := []struct {
		in   string
		want int
		bad  bool
	}{
		{in: "2s", want: 2}, {in: "2m", want: 120}, {in: "1m30s", want: 90}, {in: "10", want: 10}, {in: "0", want: 0},
		{in: "1.5s", bad: true}, {in: "-3s", bad: true}, {in: "-3", bad: true}, {in: "ten", bad: true}, {in: "500ms", bad: true},
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
