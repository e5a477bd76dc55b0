package wire

import "testing"

func TestParseHops(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{{"", 0, true}, {"0", 0, true}, {"16", 16, true}, {"-1", 0, false}, {"x", 0, false}, {"99999999999", 0, false}}
	for _, tt := range tests {
		got, err := ParseHops(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseHops(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
