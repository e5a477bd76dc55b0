package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/wire"
)

func TestRetryPolicyBackoffGrowsAndCaps(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, InitialInterval: time.Second, MaxInterval: 10 * time.Second, Multiplier: 2}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := p.Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}

func TestRetryPolicyJitterStaysInBounds(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, InitialInterval: time.Second, MaxInterval: time.Minute, Multiplier: 2, Jitter: 0.5}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Backoff(3) // base 4s, ±50%
		if d < 2*time.Second || d > 6*time.Second {
			t.Fatalf("Backoff(3) = %s, want within [2s, 6s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("jitter produced only %d distinct delays in 200 draws", len(seen))
	}
}

func TestRetryPolicyDecide(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 3, InitialInterval: time.Second, MaxInterval: 5 * time.Second, Multiplier: 2, MaxAge: time.Minute}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := created.Add(10 * time.Second)
	tests := []struct {
		name      string
		c         Classified
		attempts  int
		now       time.Time
		wantRetry bool
		wantAt    time.Time
		wantCode  string
	}{
		{"RetryableFirstFailure", Classified{Code: "http_503"}, 1, now, true, now.Add(time.Second), ""},
		{"RetryableSecondFailure", Classified{Code: "http_503"}, 2, now, true, now.Add(2 * time.Second), ""},
		{"Exhausted", Classified{Code: "http_503"}, 3, now, false, time.Time{}, wire.CodeRetriesExhausted},
		{"Permanent", Classified{Code: "http_400", Permanent: true}, 1, now, false, time.Time{}, wire.CodeRejected},
		{"LoopDetected", Classified{Code: wire.CodeLoopDetected, Permanent: true}, 0, now, false, time.Time{}, wire.CodeLoopDetected},
		{"RetryAfterLongerThanBackoff", Classified{Code: "http_429", RetryAfter: 3 * time.Second}, 1, now, true, now.Add(3 * time.Second), ""},
		{"RetryAfterCappedByMaxInterval", Classified{Code: "http_503", RetryAfter: time.Hour}, 1, now, true, now.Add(5 * time.Second), ""},
		{"MaxAgeReached", Classified{Code: "timeout"}, 1, created.Add(time.Minute - 500*time.Millisecond), false, time.Time{}, wire.CodeMaxAgeExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Decide(tt.c, tt.attempts, created, tt.now)
			if got.Retry != tt.wantRetry || !got.At.Equal(tt.wantAt) || got.Code != tt.wantCode {
				t.Errorf("Decide = %+v, want retry=%v at=%s code=%q", got, tt.wantRetry, tt.wantAt, tt.wantCode)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		code      string
		permanent bool
	}{
		{"Permanent", Permanent("http_400", errors.New("bad")), "http_400", true},
		{"RetryableWrapped", errors.Join(errors.New("ctx"), Retryable("http_503", nil, time.Second)), "http_503", false},
		{"Deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), "timeout", false},
		{"Plain", errors.New("boom"), "error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Classify(tt.err)
			if c.Code != tt.code || c.Permanent != tt.permanent {
				t.Errorf("Classify = %+v, want code %q permanent %v", c, tt.code, tt.permanent)
			}
		})
	}
}
