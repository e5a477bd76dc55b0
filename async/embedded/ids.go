package embedded

// The index keeps a task id that is a canonical UUID (lower-case, hyphened:
// what the API makes) as its 16 bytes, and any other id as a string beside
// it, so that a million queued tasks do not cost a million id strings.

// uuidKey is a canonical UUID id in 16 bytes.
type uuidKey [16]byte

// parseUUID reads id as a canonical UUID; ok is false for any other form,
// so that uuidKey.String gives id back exactly.
func parseUUID(id string) (k uuidKey, ok bool) {
	if len(id) != 36 {
		return k, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if id[i] != '-' {
				return k, false
			}
			i++
			continue
		}
		hi, ok1 := unhex(id[i])
		lo, ok2 := unhex(id[i+1])
		if !ok1 || !ok2 {
			return k, false
		}
		k[j] = hi<<4 | lo
		j++
		i += 2
	}
	return k, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// String formats k as the canonical UUID it was parsed from.
func (k uuidKey) String() string {
	const digits = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range k {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = digits[c>>4], digits[c&0xf]
		j += 2
	}
	return string(b[:])
}

// entryMap finds entries by task id.
type entryMap struct {
	uuids  map[uuidKey]*entry
	others map[string]*entry
}

func newEntryMap() entryMap {
	return entryMap{uuids: map[uuidKey]*entry{}, others: map[string]*entry{}}
}

// get returns the entry of id, or nil.
func (m entryMap) get(id string) *entry {
	if k, ok := parseUUID(id); ok {
		return m.uuids[k]
	}
	return m.others[id]
}

// put indexes e under id, setting e's id.
func (m entryMap) put(id string, e *entry) {
	if k, ok := parseUUID(id); ok {
		e.uid, e.sid = k, nil
		m.uuids[k] = e
		return
	}
	e.sid = &id
	m.others[id] = e
}

// has reports whether e is the entry indexed under its id.
func (m entryMap) has(e *entry) bool {
	if e.sid != nil {
		return m.others[*e.sid] == e
	}
	return m.uuids[e.uid] == e
}

// remove forgets e.
func (m entryMap) remove(e *entry) {
	if e.sid != nil {
		delete(m.others, *e.sid)
		return
	}
	delete(m.uuids, e.uid)
}

// len is the number of entries.
func (m entryMap) len() int { return len(m.uuids) + len(m.others) }
