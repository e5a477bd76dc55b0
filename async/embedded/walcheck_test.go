package embedded

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
)

// liveWAL writes n synced records with Pebble and returns its WAL's bytes
// (without the preallocated zeros) and number. The DB stays open until
// the test ends, so nothing is flushed out of the WAL.
func liveWAL(t *testing.T, n int) ([]byte, uint64) {
	t.Helper()
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{quietLogger, func(err error) { panic(err) }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	for i := range n {
		if err := db.Set(fmt.Appendf(nil, "k%04d", i), bytes.Repeat([]byte{'v'}, 100), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no WAL")
	}
	last := logs[len(logs)-1]
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	num, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(last), ".log"), 10, 64)
	return bytes.TrimRight(b, "\x00"), num
}

func TestScanWAL(t *testing.T) {
	wal, num := liveWAL(t, 100)
	flipped := bytes.Clone(wal)
	for i := range 4 {
		flipped[len(wal)/3+i] ^= 0xff
	}
	tests := []struct {
		name        string
		data        []byte
		wantDropped bool // valid records after the stop
		wantPartial bool
	}{
		{"Intact", wal, false, false},
		{"PreallocatedTail", append(bytes.Clone(wal), make([]byte, 64<<10)...), false, false},
		{"FlippedBytes", flipped, true, false},
		{"TruncatedMidRecord", wal[:len(wal)*2/3+7], false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := scanWAL(tt.data, num)
			if (d.droppedRecords > 0) != tt.wantDropped || d.partial != tt.wantPartial {
				t.Fatalf("scanWAL = %+v, want dropped %v, partial %v", d, tt.wantDropped, tt.wantPartial)
			}
			if tt.wantDropped && (d.droppedRecords < 50 || d.droppedKeys != d.droppedRecords) {
				t.Errorf("dropped %d batches with %d keys; want about 2/3 of 100, one key each", d.droppedRecords, d.droppedKeys)
			}
		})
	}
}
