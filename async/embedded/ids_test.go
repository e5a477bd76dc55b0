package embedded

import (
	"testing"
	"unsafe"

	"github.com/google/uuid"
)

func TestParseUUID(t *testing.T) {
	v7 := uuid.Must(uuid.NewV7()).String()
	tests := []struct {
		id   string
		uuid bool
	}{
		{v7, true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", true},
		{"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", false}, // upper case would not round-trip
		{"{" + v7[:35] + "}", false},
		{v7[:8] + "x" + v7[9:], false},
		{"t1", false},
		{"", false},
	}
	for _, tt := range tests {
		k, ok := parseUUID(tt.id)
		if ok != tt.uuid {
			t.Errorf("parseUUID(%q) ok = %v, want %v", tt.id, ok, tt.uuid)
		}
		if ok && k.String() != tt.id {
			t.Errorf("parseUUID(%q) formats back as %q", tt.id, k.String())
		}
	}
	m := newEntryMap()
	for _, tt := range tests {
		m.put(tt.id, &entry{})
	}
	for _, tt := range tests {
		e := m.get(tt.id)
		if e == nil || e.id() != tt.id || !m.has(e) {
			t.Fatalf("entry of %q: %+v", tt.id, e)
		}
		m.remove(e)
		if m.get(tt.id) != nil {
			t.Fatalf("%q still indexed after remove", tt.id)
		}
	}
	if m.len() != 0 {
		t.Fatalf("%d entries left", m.len())
	}
}

// TestEntrySize: a queued task's entry stays within one 64-byte allocation
// (the 1M-queued memory goal rests on it).
func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n > 64 {
		t.Fatalf("entry is %d bytes, want at most 64", n)
	}
}
