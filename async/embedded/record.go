package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
)

// The data directory's format. Format 1 kept each task as one JSON record,
// payload inline; format 2 keeps the binary record (async.AppendRecord)
// under the task key and the payload under a key of its own, written once
// at enqueue: leases, retries and outcomes rewrite only the small record.
const (
	formatVersion = 2
	prefixPayload = 'p' // p <id> → payload
	prefixFormat  = 'f' // f      → the format version, in decimal
)

var formatKey = []byte{prefixFormat}

func payloadKey(id string) []byte {
	return append([]byte{prefixPayload}, id...)
}

// putRecord adds t's record, without its payload, to b.
func putRecord(b *pebble.Batch, t *async.Task) error {
	return b.Set(taskKey(t.ID), async.AppendRecord(nil, t), nil)
}

// putNew adds a new task's record and its payload to b.
func putNew(b *pebble.Batch, t *async.Task) error {
	return errors.Join(putRecord(b, t), b.Set(payloadKey(t.ID), t.Payload, nil))
}

// decodeStored decodes a task key's value: a binary record, or a format 1
// JSON record (payload inline; legacy is then true).
func decodeStored(v []byte) (t *async.Task, legacy bool, err error) {
	if len(v) > 0 && v[0] == '{' {
		t = new(async.Task)
		return t, true, json.Unmarshal(v, t)
	}
	t, err = async.DecodeRecord(v)
	return t, false, err
}

// readRecord reads a task's record without its payload; (nil, nil) when
// there is none. The result is freshly decoded, so it never aliases
// internal state.
func (q *Queue) readRecord(id string) (*async.Task, error) {
	v, closer, err := q.db.Get(taskKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: read task %s: %w: %w", id, async.ErrUnavailable, err)
	}
	defer closer.Close()
	t, _, err := decodeStored(v)
	if err != nil {
		return nil, fmt.Errorf("embedded: decode task %s: %w: %w", id, async.ErrDamaged, err)
	}
	return t, nil
}

// readTask reads a task's record and its payload; (nil, nil) when there is
// no record.
func (q *Queue) readTask(id string) (*async.Task, error) {
	t, err := q.readRecord(id)
	if err != nil || t == nil || t.Payload != nil {
		return t, err
	}
	v, closer, err := q.db.Get(payloadKey(id))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return nil, fmt.Errorf("embedded: read task %s: its payload is missing: %w", id, async.ErrDamaged)
	case err != nil:
		return nil, fmt.Errorf("embedded: read task %s: %w: %w", id, async.ErrUnavailable, err)
	}
	defer closer.Close()
	t.Payload = append([]byte{}, v...)
	return t, nil
}

// checkFormat refuses a data directory written in a format this version
// does not read. It returns whether the directory has no format key yet:
// new, or format 1 (load then migrates its records and writes the key).
func (q *Queue) checkFormat() (unmarked bool, err error) {
	v, closer, err := q.db.Get(formatKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("embedded: open: read the data format: %w: %w", async.ErrUnavailable, err)
	}
	defer closer.Close()
	n, err := strconv.Atoi(string(v))
	if err != nil || n != formatVersion {
		return false, fmt.Errorf("embedded: open: the data directory is in format %q, and this Ferry reads format %d (and migrates format 1): "+
			"run the Ferry version that wrote it, or move the directory aside to start empty", v, formatVersion)
	}
	return false, nil
}

// markFormat records the format once the directory holds only it.
func (q *Queue) markFormat() error {
	if err := q.db.Set(formatKey, []byte(strconv.Itoa(formatVersion)), pebble.Sync); err != nil {
		return fmt.Errorf("embedded: open: write the data format: %w: %w", async.ErrUnavailable, err)
	}
	return nil
}

// migration rewrites format 1 records while load scans them: each task's
// binary record and payload key, committed every migrateBatch tasks.
type migration struct {
	q     *Queue
	b     *pebble.Batch
	n     int // in b
	total int
}

const migrateBatch = 1024

// add rewrites one format 1 task (t holds its payload).
func (m *migration) add(t *async.Task) error {
	if m.b == nil {
		m.b = m.q.db.NewBatch()
	}
	if err := putNew(m.b, t); err != nil {
		return fmt.Errorf("embedded: open: migrate task %s: %w", t.ID, err)
	}
	m.n++
	m.total++
	if m.n >= migrateBatch {
		return m.flush()
	}
	return nil
}

func (m *migration) flush() error {
	if m.b == nil {
		return nil
	}
	err := m.b.Commit(pebble.NoSync)
	m.b.Close()
	m.b, m.n = nil, 0
	if err != nil {
		return fmt.Errorf("embedded: open: migrate tasks: %w: %w", async.ErrUnavailable, err)
	}
	return nil
}

// finish commits what is left and, when the directory had no format key,
// writes it (synced, so the migrated records are durable before it).
func (m *migration) finish(unmarked bool) error {
	if err := m.flush(); err != nil {
		return err
	}
	if m.total > 0 {
		m.q.log.Info("embedded: migrated the data directory to the binary task format", "tasks", m.total, "format", formatVersion)
	}
	if unmarked {
		return m.q.markFormat()
	}
	return nil
}

// close drops an unfinished migration (Open failed).
func (m *migration) close() {
	if m.b != nil {
		m.b.Close()
	}
}
