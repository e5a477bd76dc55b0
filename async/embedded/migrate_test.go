package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
)

// writeRaw writes keys straight into a Pebble directory, as another
// version of Ferry left it.
func writeRaw(t *testing.T, dir string, kv map[string][]byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{quietLogger, func(err error) { panic(err) }}})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range kv {
		if err := db.Set([]byte(k), v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFormat1: a directory of JSON records (format 1, payload
// inline) opens as before, is rewritten to the binary format, and then
// reopens in it.
func TestMigrateFormat1(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	b.opts.Now = time.Now
	now := time.Now().UTC().Truncate(time.Millisecond)
	tasks := []*async.Task{
		{ID: "q1", Tenant: "acme", Function: "f", Status: async.StatusQueued, Payload: []byte(`{"n":1}`), ContentType: "application/json", CreatedAt: now, UpdatedAt: now, ReadyAt: now},
		{ID: "r1", Tenant: "acme", Function: "f", Status: async.StatusRunning, Payload: []byte("raw"), Lease: 3, Attempts: 1, CreatedAt: now.Add(time.Millisecond), UpdatedAt: now, ReadyAt: now, LeaseExpiresAt: now.Add(time.Hour)},
		{ID: "s1", Tenant: "acme", Function: "f", Status: async.StatusSucceeded, Payload: []byte("p"), Output: []byte(`"ok"`), Attempts: 1, CreatedAt: now.Add(-time.Second), UpdatedAt: now, ReadyAt: now, FinishedAt: now},
	}
	kv := map[string][]byte{}
	for _, task := range tasks {
		v, err := json.Marshal(task)
		if err != nil {
			t.Fatal(err)
		}
		kv[string(taskKey(task.ID))] = v
		kv[string(listKey(task.Tenant, task.CreatedAt, task.ID))] = []byte(task.Function)
	}
	writeRaw(t, b.dir, kv)

	q := open(t, b)
	for _, want := range tasks {
		got, err := q.Get(ctx, "acme", want.ID)
		if err != nil || string(got.Payload) != string(want.Payload) || got.CreatedAt.UnixMilli() != want.CreatedAt.UnixMilli() {
			t.Fatalf("Get(%s) = %+v, %v; want the payload %q kept", want.ID, got, err, want.Payload)
		}
	}
	for _, want := range []struct {
		id         string
		recoveries int
	}{{"q1", 0}, {"r1", 1}} {
		l, _, err := q.Lease(ctx, async.LeaseRequest{TTL: time.Minute})
		if err != nil || l == nil || l.ID != want.id || l.Recoveries != want.recoveries || len(l.Payload) == 0 {
			t.Fatalf("Lease = %+v, %v; want %s with %d recoveries and its payload", l, err, want.id, want.recoveries)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := pebble.Open(b.dir, &pebble.Options{Logger: pebbleLogger{quietLogger, func(err error) { panic(err) }}})
	if err != nil {
		t.Fatal(err)
	}
	v, closer, err := db.Get(formatKey)
	if err != nil || string(v) != "2" {
		t.Fatalf("format key %q, %v; want 2", v, err)
	}
	closer.Close()
	for _, task := range tasks {
		v, closer, err := db.Get(taskKey(task.ID))
		if err != nil || v[0] == '{' {
			t.Fatalf("task %s is still JSON after the migration (%v)", task.ID, err)
		}
		closer.Close()
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	q = open(t, b)
	if got, err := q.Get(ctx, "acme", "s1"); err != nil || got.Status != async.StatusSucceeded || string(got.Output) != `"ok"` {
		t.Fatalf("after reopening, Get(s1) = %+v, %v", got, err)
	}
}

// TestRefuseUnknownFormat: a directory of a format or record version this
// Ferry does not read fails Open with a message saying so; nothing is
// misread.
func TestRefuseUnknownFormat(t *testing.T) {
	tests := []struct {
		name string
		kv   map[string][]byte
		want string
	}{
		{"FormatKey", map[string][]byte{"f": []byte("3")}, `format "3"`},
		{"RecordVersion", map[string][]byte{"f": []byte("2"), "tx": {async.RecordVersion + 1, 0, 0}}, "another version of Ferry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBundle(t, nil)
			b.opts.Now = time.Now
			writeRaw(t, b.dir, tt.kv)
			q, err := Open(b.dir, b.opts)
			if err == nil {
				q.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v; want it to say %s", err, tt.want)
			}
			if tt.name == "RecordVersion" && !errors.Is(err, async.ErrRecordVersion) {
				t.Errorf("Open: %v; want ErrRecordVersion", err)
			}
		})
	}
}
