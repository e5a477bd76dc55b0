package webhook

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ferrydev/ferry/wire"
)

// deadlineRecorder answers 204 and records the deadline of each request's
// context.
type deadlineRecorder struct {
	deadline time.Time
	has      bool
}

func (r *deadlineRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.deadline, r.has = req.Context().Deadline()
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

// TestTimeoutAppliedOnce: with no Timeout the Sink adds no deadline of its
// own (the caller's, e.g. the dispatcher's per-destination timeout, is the
// only one); with a Timeout it bounds the attempt.
func TestTimeoutAppliedOnce(t *testing.T) {
	o := &wire.Outcome{ID: "t1", Type: wire.TypeSucceeded}
	t.Run("ZeroAddsNone", func(t *testing.T) {
		rec := &deadlineRecorder{}
		s, err := New(Config{URL: "http://receiver.test/", Secret: vecSecret, Client: &http.Client{Transport: rec}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Deliver(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		if rec.has {
			t.Errorf("request deadline %v without a Timeout or a caller's deadline, want none", rec.deadline)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		want, _ := ctx.Deadline()
		if err := s.Deliver(ctx, o); err != nil {
			t.Fatal(err)
		}
		if !rec.deadline.Equal(want) {
			t.Errorf("request deadline %v, want the caller's %v", rec.deadline, want)
		}
	})
	t.Run("TimeoutBounds", func(t *testing.T) {
		rec := &deadlineRecorder{}
		s, err := New(Config{URL: "http://receiver.test/", Secret: vecSecret, Timeout: time.Second, Client: &http.Client{Transport: rec}})
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		if err := s.Deliver(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		if !rec.has || rec.deadline.Sub(before) > time.Second+100*time.Millisecond {
			t.Errorf("request deadline %v (set %v), want within 1s of the call", rec.deadline, rec.has)
		}
	})
}
