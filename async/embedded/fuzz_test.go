package embedded

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

// FuzzDecodeStored: any stored task value (binary record or format 1
// JSON) decodes to a task or an error, never a panic.
func FuzzDecodeStored(f *testing.F) {
	task := &async.Task{ID: "t1", Tenant: "a", Function: "f", Status: async.StatusQueued, Attempts: 2,
		CreatedAt: time.Unix(1700000000, 0).UTC(), Error: &async.TaskError{Code: "x", Message: "m"}}
	f.Add(async.AppendRecord(nil, task))
	f.Add([]byte(`{"id":"t1","tenant":"a","function":"f","status":"queued","payload":"eA=="}`))
	f.Add([]byte(`{"id":`))
	f.Add([]byte{})
	f.Add([]byte{async.RecordVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, v []byte) {
		got, _, err := decodeStored(v)
		if err == nil && got == nil {
			t.Fatal("decodeStored: no task and no error")
		}
	})
}

// FuzzCursor: any cursor of a list request is decoded or refused with
// ErrBadCursor, never a panic; a cursor Ferry made reads back for its own
// query and is refused for another.
func FuzzCursor(f *testing.F) {
	o := async.ListOptions{Tenant: "a", Function: "f", Status: async.StatusQueued}
	f.Add(encodeCursor(o, []byte("\x00\x00\x00\x00\x00\x00\x00\x01id")), []byte("suffix-0000"))
	f.Add("", []byte{})
	f.Add("AQ", []byte{1})
	f.Add(strings.Repeat("_", 100), []byte("x"))
	f.Fuzz(func(t *testing.T, cursor string, suffix []byte) {
		o := o
		o.Cursor = cursor
		if _, err := decodeCursor(o); err != nil && !errors.Is(err, async.ErrBadCursor) {
			t.Fatalf("decodeCursor(%q): %v, not ErrBadCursor", cursor, err)
		}
		o.Cursor = encodeCursor(o, suffix)
		got, err := decodeCursor(o)
		if len(suffix) >= 9 && (err != nil || string(got) != string(suffix)) {
			t.Fatalf("round trip of suffix %q: %q, %v", suffix, got, err)
		}
		other := o
		other.Function = "g"
		if _, err := decodeCursor(other); err == nil {
			t.Fatalf("cursor %q accepted for another query", o.Cursor)
		}
	})
}
