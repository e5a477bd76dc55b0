package redisstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
)

// FuzzDecode: any task hash fields read from Redis (a damaged record, a
// field of the wrong kind) decode to a task or an error, never a panic.
// The input is the fields joined with NUL; a missing field is nil.
func FuzzDecode(f *testing.F) {
	rec := string(async.AppendRecord(nil, &async.Task{ID: "t1", Tenant: "a", Function: "f", Status: async.StatusQueued,
		CreatedAt: time.Unix(1700000000, 0).UTC()}))
	f.Add(strings.Join([]string{rec, "payload", "running", "3", "1700000000000", "0", "1", "1700000000001", "1700000000000", "", "7"}, "\x00"))
	f.Add(strings.Join([]string{rec, "", "queued"}, "\x00"))
	f.Add("\x01garbage\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	f.Add("")
	f.Fuzz(func(t *testing.T, joined string) {
		parts := strings.Split(joined, "\x00")
		vals := make([]any, numFields)
		for i := range vals {
			if i < len(parts) {
				vals[i] = parts[i]
			}
		}
		if len(parts) > 1 && parts[1] == "int" {
			vals[6] = int64(len(joined)) // a number where Redis gives one
		}
		task, _, err := decode(vals)
		if err == nil && task == nil && vals[0] != nil {
			t.Fatal("decode: no task and no error for a present record")
		}
	})
}

// FuzzCursor: any cursor of a list request is decoded or refused with
// ErrBadCursor, never a panic; a cursor Ferry made reads back for its own
// query and is refused for another.
func FuzzCursor(f *testing.F) {
	o := async.ListOptions{Tenant: "a", Function: "f", Status: async.StatusQueued}
	f.Add(encodeCursor(o, "1700000000000:t1"), "member")
	f.Add("", "m")
	f.Add("YQBmAHF1ZXVlZAA", "x\x00y")
	f.Fuzz(func(t *testing.T, cursor, member string) {
		o := o
		o.Cursor = cursor
		if _, err := decodeCursor(o); err != nil && !errors.Is(err, async.ErrBadCursor) {
			t.Fatalf("decodeCursor(%q): %v, not ErrBadCursor", cursor, err)
		}
		o.Cursor = encodeCursor(o, member)
		got, err := decodeCursor(o)
		if member != "" && (err != nil || got != member) {
			t.Fatalf("round trip of member %q: %q, %v", member, got, err)
		}
		other := o
		other.Function = "g"
		if _, err := decodeCursor(other); err == nil {
			t.Fatalf("cursor %q accepted for another query", o.Cursor)
		}
	})
}
