package wire

import (
	"strconv"
	"testing"
)

// FuzzParseHops: a hop count from a message header or a request is either
// an error or a count in [0, MaxHopsAccepted] that reads back the same.
func FuzzParseHops(f *testing.F) {
	for _, s := range []string{"", "0", "16", "-1", "+3", "1048576", "1048577", "9223372036854775808", " 1", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := ParseHops(v)
		if err != nil {
			return
		}
		if n < 0 || n > MaxHopsAccepted {
			t.Fatalf("ParseHops(%q) = %d, out of range", v, n)
		}
		if v != "" {
			if back, _ := strconv.Atoi(v); back != n {
				t.Fatalf("ParseHops(%q) = %d, want %d", v, n, back)
			}
		}
	})
}
