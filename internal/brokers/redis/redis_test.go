package redis

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	opt, err := ParseURL("redis://u:s3cret@127.0.0.1:6380/2")
	if err != nil || opt.Addr != "127.0.0.1:6380" || opt.Password != "s3cret" || opt.DB != 2 {
		t.Fatalf("ParseURL = %+v, %v", opt, err)
	}
	for _, bad := range []string{"redis://u:s3cret@127.0.0.1:port/0", "http://u:s3cret@127.0.0.1:6379/0", "redis://u:s3cret@h:6379/x"} {
		if _, err := ParseURL(bad); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseURL(%q) error = %v; want an error without the password", bad, err)
		}
	}
}
