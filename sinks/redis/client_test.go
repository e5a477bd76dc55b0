package redis_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/redis"
	"github.com/ferrydev/ferry/sinks/sinktest"
)

var _ sinks.Sink = (*redis.Sink)(nil)

func TestNewClientValidation(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr string // "" = valid
	}{
		{"Valid", "redis://127.0.0.1:6379/0", ""},
		{"ValidTLSWithPassword", "rediss://user:pw@redis.internal:6380/2?dial_timeout=2s", ""},
		{"ValidUnix", "unix:///run/redis.sock?db=1", ""},
		{"Empty", "", "url: required"},
		{"BadScheme", "http://127.0.0.1:6379/0", "invalid URL scheme: http"},
		{"BadDatabase", "redis://127.0.0.1:6379/zero", `invalid database number: "zero"`},
		{"BadOption", "redis://127.0.0.1:6379/0?max_retries=many", "invalid max_retries number"},
		{"UnknownOption", "redis://127.0.0.1:6379/0?colour=blue", "unexpected option: colour"},
		{"Unparsable", "redis://user:s3cret@[::1/0", "missing ']' in host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := redis.NewClient(redis.ClientConfig{URL: tt.url})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewClient(%q): %v", tt.url, err)
				}
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("NewClient(%q) succeeded, want an error", tt.url)
			}
			if !strings.HasPrefix(err.Error(), "redis sink config: url: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewClient(%q) = %q, want an error about the url containing %q", tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

// url returns the URL of database 0 at addr.
func url(addr string) string { return "redis://" + addr + "/0" }

// TestDeliverRefuses: deliveries that cannot work fail at once, without a
// server, and say why.
func TestDeliverRefuses(t *testing.T) {
	c := newClient(t, url(sinktest.Unreachable(t)))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	sinktest.CheckRefusals(t, []sinktest.Refusal{
		{Name: "NilOutcome", Sink: c.Sink("s", 0), Ctx: bg, WantErr: "nil outcome"},
		{Name: "EmptyStream", Sink: c.Sink("", 0), Ctx: bg, O: sinktest.Succeeded("a"), WantErr: "empty stream name"},
		{Name: "CancelledContext", Sink: c.Sink("s", 0), Ctx: cancelled, O: sinktest.Succeeded("a"), WantErr: `deliver a to stream "s"`, WantIs: context.Canceled},
	})
}

func TestDeliverAfterClose(t *testing.T) {
	c, err := redis.NewClient(redis.ClientConfig{URL: url(sinktest.Unreachable(t))})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Sink("s", 0).Deliver(context.Background(), sinktest.Succeeded("a")); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Deliver after Close = %v, want a closed-client error", err)
	}
}
