package rabbitmq

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	u, err := ParseURL("amqp://guest:s3cret@127.0.0.1:5673/vh")
	if err != nil || u.Addr != "127.0.0.1:5673" || u.URI.Password != "s3cret" {
		t.Fatalf("ParseURL = %+v, %v", u, err)
	}
	if got := u.Redactor.Text("dial amqp://guest:s3cret@127.0.0.1:5673/vh: s3cret"); strings.Contains(got, "s3cret") {
		t.Errorf("Redactor left the password in %q", got)
	}
	for _, bad := range []string{"http://127.0.0.1:5672/", "amqp://guest:s3cret@127.0.0.1:port/"} {
		_, err := ParseURL(bad)
		if err == nil || !strings.HasPrefix(err.Error(), "not an AMQP URI: ") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseURL(%q) error = %v; want \"not an AMQP URI: ...\" without the password", bad, err)
		}
	}
}
