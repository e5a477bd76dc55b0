package async

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 4, 17, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		task *Task
	}{
		{"minimal", &Task{ID: "a", Tenant: "t", Function: "f", Status: StatusQueued, CreatedAt: at, ReadyAt: at}},
		{"eventTime", &Task{ID: "a", Tenant: "t", Function: "f", Status: StatusQueued, CreatedAt: at, ReadyAt: at,
			EventTime: at.Add(-time.Minute), Deliveries: []Delivery{{Kind: "log", State: DeliveryPending}}}},
		{"full", &Task{
			ID: "0193a6b0-0000-7000-8000-000000000001", Tenant: "acme", Function: "resize",
			ContentType: "application/json", IdempotencyKey: "k-1", Hops: 3,
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			Status:      StatusFailed, Attempts: 4, Recoveries: 2, Replays: 1, ReplayedAt: at.Add(time.Second),
			CreatedAt: at, UpdatedAt: at.Add(time.Minute), ReadyAt: at.Add(time.Hour),
			Lease: 1 << 40, LeaseExpiresAt: at.Add(2 * time.Minute), FinishedAt: at.Add(3 * time.Minute),
			Output: []byte(`{"ok":false}`), OutputType: "application/json", StatusCode: 503,
			Error:     &TaskError{Code: "retries_exhausted", Message: "gave up", HTTPStatus: 503},
			LastError: &TaskError{Code: "http_503", Message: "busy"},
			Deliveries: []Delivery{
				{Index: 0, Destination: "on_failure[0]", Kind: "webhook", State: DeliveryFailed, Attempts: 5, LastError: "refused",
					FirstAttemptAt: at, NextAttemptAt: at.Add(time.Second)},
				{Index: 1, Destination: "on_failure[1]", Kind: "log", State: DeliveryPending},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendRecord([]byte("prefix"), tt.task)
			got, err := DecodeRecord(b[len("prefix"):])
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if !reflect.DeepEqual(got, tt.task) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.task)
			}
		})
	}
}

// TestRecordVersions: a task without an EventTime is written as version
// 1, which the Ferry before version 2 reads; one with an EventTime as
// version 2.
func TestRecordVersions(t *testing.T) {
	at := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	plain := &Task{ID: "a", Tenant: "t", Function: "f", CreatedAt: at}
	if b := AppendRecord(nil, plain); b[0] != 1 {
		t.Errorf("a task without EventTime is written as version %d, want 1", b[0])
	}
	timed := plain.Clone()
	timed.EventTime = at
	b := AppendRecord(nil, timed)
	if b[0] != 2 {
		t.Errorf("a task with EventTime is written as version %d, want 2", b[0])
	}
	if got, err := DecodeRecord(b); err != nil || !got.EventTime.Equal(at) || !got.EventAt().Equal(at) {
		t.Errorf("DecodeRecord = %+v, %v; want EventTime %v", got, err, at)
	}
	if got := plain.EventAt(); !got.Equal(at) {
		t.Errorf("EventAt without EventTime = %v, want CreatedAt %v", got, at)
	}
	// Version 2 without its last field is damaged, not misread.
	if _, err := DecodeRecord(b[:len(b)-1]); !errors.Is(err, ErrRecordCorrupt) {
		t.Errorf("truncated version 2: %v, want ErrRecordCorrupt", err)
	}
}

func TestRecordLeavesPayloadOut(t *testing.T) {
	got, err := DecodeRecord(AppendRecord(nil, &Task{ID: "a", Payload: []byte("big")}))
	if err != nil || got.Payload != nil || got.ID != "a" {
		t.Fatalf("got %+v, %v; want the task without its payload", got, err)
	}
}

func TestRecordRefusesOtherVersionsAndDamage(t *testing.T) {
	good := AppendRecord(nil, &Task{ID: "a", Tenant: "t", Function: "f", Status: StatusQueued})
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrRecordCorrupt},
		{"json", []byte(`{"id":"a"}`), ErrRecordVersion},
		{"next version", append([]byte{RecordVersion + 1}, good[1:]...), ErrRecordVersion},
		{"truncated", good[:len(good)-3], ErrRecordCorrupt},
		{"trailing", append(append([]byte(nil), good...), 0), ErrRecordCorrupt},
		{"huge length", []byte{RecordVersion, 0xff, 0xff, 0xff, 0x0f}, ErrRecordCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeRecord(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeRecord = %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, &Task{ID: "a", Deliveries: []Delivery{{Kind: "log"}}, Error: &TaskError{Code: "x"}}))
	f.Add([]byte{RecordVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		task, err := DecodeRecord(b)
		if err != nil {
			return
		}
		again, err := DecodeRecord(AppendRecord(nil, task))
		if err != nil || !reflect.DeepEqual(again, task) {
			t.Fatalf("re-encoding a decoded record changed it: %v", err)
		}
	})
}
