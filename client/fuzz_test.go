package client

import (
	"net/http"
	"testing"
	"time"
)

// FuzzParseRetryAfter: any Retry-After the server sends is a wait of 0 or
// more, never a panic.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{"", "0", "30", "-1", " 7 ", "9223372036854775807", "99999999999",
		now.Add(time.Minute).Format(http.TimeFormat), "Fri, 31 Dec 1999 23:59:59 GMT", "soon"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %s, negative", v, d)
		}
	})
}
