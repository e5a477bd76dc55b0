package async

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// RecordVersion is the newest format version of the binary task record.
// DecodeRecord reads versions 1 and 2 and refuses any other with
// ErrRecordVersion, so a store never misreads records written by another
// version of Ferry. Version 2 is version 1 with the task's EventTime at
// the end; AppendRecord writes it only for a task that has an EventTime
// (a timer tick's), and version 1 otherwise, so a store without timer
// tasks stays readable by the Ferry before version 2.
const RecordVersion = 2

// recordV1 is the record format without EventTime.
const recordV1 = 1

// Record errors.
var (
	// ErrRecordVersion: the record was written in a format this version of
	// Ferry does not read.
	ErrRecordVersion = errors.New("unsupported task record version")
	// ErrRecordCorrupt: the record is truncated or malformed.
	ErrRecordCorrupt = errors.New("corrupt task record")
)

// AppendRecord appends t's binary record to dst and returns it. The record
// holds every field except Payload: a store keeps the payload beside it,
// written once at enqueue, so state changes (leases, retries, completions)
// rewrite only the small record. The layout is the version byte, then the
// fields in a fixed order as varints and length-prefixed bytes; times are
// Unix nanoseconds (0 for the zero time).
func AppendRecord(dst []byte, t *Task) []byte {
	if dst == nil {
		// One allocation: the strings and output, plus about 100 bytes
		// of varints and times.
		n := 128 + len(t.ID) + len(t.Tenant) + len(t.Function) + len(t.ContentType) + len(t.IdempotencyKey) +
			len(t.TraceParent) + len(t.Output) + 64*len(t.Deliveries)
		dst = make([]byte, 0, n)
	}
	version := byte(recordV1)
	if !t.EventTime.IsZero() {
		version = RecordVersion
	}
	e := encoder(append(dst, version))
	e.str(t.ID)
	e.str(t.Tenant)
	e.str(t.Function)
	e.str(t.ContentType)
	e.str(t.IdempotencyKey)
	e.int(int64(t.Hops))
	e.str(t.TraceParent)
	e.str(string(t.Status))
	e.int(int64(t.Attempts))
	e.int(int64(t.Recoveries))
	e.int(int64(t.Replays))
	e.time(t.ReplayedAt)
	e.time(t.CreatedAt)
	e.time(t.UpdatedAt)
	e.time(t.ReadyAt)
	e.uint(t.Lease)
	e.time(t.LeaseExpiresAt)
	e.time(t.FinishedAt)
	e.bytes(t.Output)
	e.str(t.OutputType)
	e.int(int64(t.StatusCode))
	e.taskError(t.Error)
	e.taskError(t.LastError)
	e.uint(uint64(len(t.Deliveries)))
	for _, d := range t.Deliveries {
		e.int(int64(d.Index))
		e.str(d.Destination)
		e.str(d.Kind)
		e.str(string(d.State))
		e.int(int64(d.Attempts))
		e.str(d.LastError)
		e.time(d.FirstAttemptAt)
		e.time(d.NextAttemptAt)
	}
	if version == RecordVersion {
		e.time(t.EventTime)
	}
	return e
}

// DecodeRecord decodes a record written by AppendRecord; the task's Payload
// is left nil. ErrRecordVersion for another format version,
// ErrRecordCorrupt for a damaged record.
func DecodeRecord(b []byte) (*Task, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrRecordCorrupt)
	}
	version := b[0]
	if version != recordV1 && version != RecordVersion {
		return nil, fmt.Errorf("%w: %d (this Ferry reads versions %d to %d)", ErrRecordVersion, version, recordV1, RecordVersion)
	}
	d := decoder{b: b[1:]}
	t := &Task{}
	t.ID = d.str()
	t.Tenant = d.str()
	t.Function = d.str()
	t.ContentType = d.str()
	t.IdempotencyKey = d.str()
	t.Hops = d.int()
	t.TraceParent = d.str()
	t.Status = Status(d.str())
	t.Attempts = d.int()
	t.Recoveries = d.int()
	t.Replays = d.int()
	t.ReplayedAt = d.time()
	t.CreatedAt = d.time()
	t.UpdatedAt = d.time()
	t.ReadyAt = d.time()
	t.Lease = d.uint()
	t.LeaseExpiresAt = d.time()
	t.FinishedAt = d.time()
	t.Output = d.bytes()
	t.OutputType = d.str()
	t.StatusCode = d.int()
	t.Error = d.taskError()
	t.LastError = d.taskError()
	n := d.uint()
	if n > uint64(len(d.b)) { // every delivery takes at least one byte
		d.fail()
	}
	if d.err == nil && n > 0 {
		t.Deliveries = make([]Delivery, n)
		for i := range t.Deliveries {
			dl := &t.Deliveries[i]
			dl.Index = d.int()
			dl.Destination = d.str()
			dl.Kind = d.str()
			dl.State = DeliveryState(d.str())
			dl.Attempts = d.int()
			dl.LastError = d.str()
			dl.FirstAttemptAt = d.time()
			dl.NextAttemptAt = d.time()
		}
	}
	if version == RecordVersion {
		t.EventTime = d.time()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return nil, d.err
	}
	return t, nil
}

type encoder []byte

func (e *encoder) uint(v uint64) { *e = binary.AppendUvarint(*e, v) }
func (e *encoder) int(v int64)   { *e = binary.AppendVarint(*e, v) }
func (e *encoder) bytes(b []byte) {
	e.uint(uint64(len(b)))
	*e = append(*e, b...)
}
func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	*e = append(*e, s...)
}

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.int(0)
		return
	}
	e.int(t.UnixNano())
}

func (e *encoder) taskError(te *TaskError) {
	if te == nil {
		e.uint(0)
		return
	}
	e.uint(1)
	e.str(te.Code)
	e.str(te.Message)
	e.int(int64(te.HTTPStatus))
}

// decoder reads what encoder wrote; the first error sticks and every later
// read returns a zero value.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or malformed", ErrRecordCorrupt)
	}
	d.b = nil
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	v, n := binary.Varint(d.b)
	if n <= 0 || v < math.MinInt32 || v > math.MaxInt32 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *decoder) raw() []byte {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.raw()) }

func (d *decoder) bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) time() time.Time {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return time.Time{}
	}
	d.b = d.b[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func (d *decoder) taskError() *TaskError {
	switch d.uint() {
	case 0:
		return nil
	case 1:
		return &TaskError{Code: d.str(), Message: d.str(), HTTPStatus: d.int()}
	}
	d.fail()
	return nil
}
