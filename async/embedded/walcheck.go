package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/record"
)

// ErrWALDamaged is returned by Open, with Options.StrictWAL, for a
// write-ahead log that hides writes behind a damaged record.
var ErrWALDamaged = errors.New("damaged write-ahead log")

// Pebble replays a WAL up to its first invalid record and treats the rest
// as the torn tail of a crash, with only an INFO line. A process crash
// leaves no torn tail (the OS keeps what was written), so valid records
// after the stop, or a record cut off mid-way, mean the file was damaged
// and acknowledged writes are about to be dropped. checkWAL reads each WAL
// before Pebble does, with Pebble's own record reader, and when it stops
// early looks for valid records of the same log after the stop (a chunk
// with the log's number and a good checksum): what it finds is reported at
// ERROR (or refused, strict). A WAL cut exactly at a record boundary looks
// like a clean end and cannot be told apart by its content.
func checkWAL(dir string, log *slog.Logger, strict bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // a new directory; Open reports real I/O errors
	}
	type wal struct {
		name string
		num  uint64
	}
	var wals []wal
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(base, 10, 64); err == nil {
			wals = append(wals, wal{e.Name(), n})
		}
	}
	sort.Slice(wals, func(i, j int) bool { return wals[i].num < wals[j].num })
	for _, w := range wals {
		data, err := os.ReadFile(filepath.Join(dir, w.name))
		if err != nil {
			return fmt.Errorf("embedded: open %s: read WAL %s: %w", dir, w.name, err)
		}
		d := scanWAL(data, w.num)
		if d.droppedRecords == 0 && !d.partial {
			continue
		}
		args := []any{"dir", dir, "wal", w.name, "stopped_at_offset", d.stop, "replayed_batches", d.replayed,
			"dropped_batches", d.droppedRecords, "dropped_keys", d.droppedKeys, "dropped_bytes", len(data) - int(d.stop), "partial_record", d.partial}
		if strict {
			return fmt.Errorf("embedded: open %s: %w: %s stops at a damaged record at offset %d, and %d later batches (%d keys) would be dropped "+
				"(store.embedded.wal_recovery: strict refuses this; set tolerate to start with what can be replayed)",
				dir, ErrWALDamaged, w.name, d.stop, d.droppedRecords, d.droppedKeys)
		}
		log.Error("embedded: the write-ahead log is damaged: Pebble replays it only up to the damage, and the writes after it are dropped "+
			"(acknowledged tasks among them are lost; set store.embedded.wal_recovery: strict to refuse to start instead)", args...)
	}
	return nil
}

// walDamage is what scanWAL found in one WAL.
type walDamage struct {
	stop           int64 // offset of the record replay stops at
	replayed       int   // batches before it
	droppedRecords int   // valid batches of this log after it
	droppedKeys    int   // their keys (a batch header counts them)
	partial        bool  // the WAL ends inside a record
}

const (
	walBlockSize      = 32 << 10
	walLegacyHeader   = 7
	walRecycledHeader = 11
	walBatchHeader    = 12 // sequence number (8) and count (4)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// scanWAL replays data as Pebble would and describes what it drops.
func scanWAL(data []byte, num uint64) walDamage {
	var d walDamage
	rr := record.NewReader(bytes.NewReader(data), pebble.FileNum(num))
	for {
		d.stop = rr.Offset()
		r, err := rr.Next()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		if errors.Is(err, io.EOF) {
			return walDamage{} // a clean end
		}
		if err != nil {
			d.partial = errors.Is(err, io.ErrUnexpectedEOF) || cutOff(data, int(d.stop), uint32(num))
			break
		}
		d.replayed++
	}
	// Look for whole records of this log after the stop.
	for p := int(d.stop) + 1; p+walLegacyHeader <= len(data); p++ {
		n, keys, ok := chunkAt(data, p, uint32(num))
		if ok {
			d.droppedRecords++
			d.droppedKeys += keys
			p += n - 1
		}
	}
	return d
}

// cutOff reports whether a chunk header of log num at p announces more
// bytes than the file holds: a record whose end was cut off.
func cutOff(data []byte, p int, num uint32) bool {
	if p+walLegacyHeader > len(data) {
		return false
	}
	header := walLegacyHeader
	switch typ := data[p+6]; {
	case typ >= 1 && typ <= 4:
	case typ >= 5 && typ <= 8:
		header = walRecycledHeader
		if p+header > len(data) || binary.LittleEndian.Uint32(data[p+7:p+11]) != num {
			return false
		}
	default:
		return false
	}
	length := int(binary.LittleEndian.Uint16(data[p+4 : p+6]))
	return length > 0 && p+header+length > len(data)
}

// chunkAt reports whether a full or first chunk of log num with a valid
// checksum starts at p, its length with header, and the key count of the
// batch it starts (from its header, when the chunk holds it).
func chunkAt(data []byte, p int, num uint32) (n, keys int, ok bool) {
	typ := data[p+6]
	header := walLegacyHeader
	switch typ {
	case 1, 2:
	case 5, 6:
		header = walRecycledHeader
		if p+header > len(data) || binary.LittleEndian.Uint32(data[p+7:p+11]) != num {
			return 0, 0, false
		}
	default:
		return 0, 0, false
	}
	length := int(binary.LittleEndian.Uint16(data[p+4 : p+6]))
	end := p + header + length
	if length == 0 || end > len(data) || p/walBlockSize != (end-1)/walBlockSize {
		return 0, 0, false
	}
	c := crc32.Checksum(data[p+6:end], castagnoli)
	if binary.LittleEndian.Uint32(data[p:p+4]) != (c>>15|c<<17)+0xa282ead8 {
		return 0, 0, false
	}
	if body := data[p+header : end]; len(body) >= walBatchHeader {
		keys = int(binary.LittleEndian.Uint32(body[8:12]))
	}
	return end - p, keys, true
}
