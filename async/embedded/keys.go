package embedded

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/ferrydev/ferry/async"
)

// Key prefixes (first byte of every key). See the package comment for the
// whole layout.
const (
	prefixTask    = 't' // t <id>                                  → task JSON
	prefixList    = 'l' // l <len16 tenant> <time64 created> <id>  → function name
	prefixIdem    = 'i' // i <len16 tenant> <key>                  → idemRecord JSON
	prefixExpiry  = 'x' // x <time64 at> <kind> <rest>             → empty
	prefixTrigger = 's' // s <trigger name>                        → "1" while the trigger is paused

	kindTask = 't' // expiry of a finished task: rest = id
	kindIdem = 'i' // expiry of an idempotency key: rest = <len16 tenant> <key>
)

// maxTenantLen bounds tenant names so that their length fits the 16-bit
// prefix used in keys.
const maxTenantLen = 1<<16 - 1

// idemRecord is the stored value of an idempotency key.
type idemRecord struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

func taskKey(id string) []byte {
	return append([]byte{prefixTask}, id...)
}

// appendTenant appends a length-prefixed tenant name, so that one tenant's
// keys can never be a prefix of another's.
func appendTenant(b []byte, tenant string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(tenant)))
	return append(b, tenant...)
}

// appendTime appends t as 8 bytes that sort like the time (nanoseconds since
// the epoch with the sign bit flipped).
func appendTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixNano())^(1<<63))
}

func listPrefix(tenant string) []byte {
	return appendTenant([]byte{prefixList}, tenant)
}

func listKey(tenant string, created time.Time, id string) []byte {
	return append(appendTime(listPrefix(tenant), created), id...)
}

func idemKey(tenant, key string) []byte {
	return append(appendTenant([]byte{prefixIdem}, tenant), key...)
}

func expiryKey(at time.Time, kind byte, rest []byte) []byte {
	b := appendTime([]byte{prefixExpiry}, at)
	b = append(b, kind)
	return append(b, rest...)
}

func taskExpiryKey(at time.Time, id string) []byte {
	return expiryKey(at, kindTask, []byte(id))
}

func idemExpiryKey(at time.Time, tenant, key string) []byte {
	return expiryKey(at, kindIdem, append(appendTenant(nil, tenant), key...))
}

// expiryUpper is the exclusive upper bound of the expiry keys due at now.
func expiryUpper(now time.Time) []byte {
	return appendTime([]byte{prefixExpiry}, now.Add(time.Nanosecond))
}

// parseExpiryKey splits an expiry key; ok is false for a malformed key.
func parseExpiryKey(k []byte) (kind byte, rest []byte, ok bool) {
	if len(k) < 10 || k[0] != prefixExpiry {
		return 0, nil, false
	}
	return k[9], k[10:], true
}

// parseTenant splits a length-prefixed tenant from the rest of b.
func parseTenant(b []byte) (tenant string, rest []byte, ok bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// Cursors are base64url(version | fnv32a(query) | listing key suffix), where
// the suffix (creation time and id) is that of the last task returned. The
// query hash ties a cursor to its tenant and filters.
const cursorVersion = 1

func queryHash(o async.ListOptions) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%s\x00%s", o.Tenant, o.Function, o.Status)
	return h.Sum32()
}

func encodeCursor(o async.ListOptions, suffix []byte) string {
	b := []byte{cursorVersion}
	b = binary.BigEndian.AppendUint32(b, queryHash(o))
	b = append(b, suffix...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the listing key suffix a cursor points after.
func decodeCursor(o async.ListOptions) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(o.Cursor)
	if err != nil || len(b) < 1+4+8+1 || b[0] != cursorVersion {
		return nil, fmt.Errorf("embedded: list: %w: malformed", async.ErrBadCursor)
	}
	if binary.BigEndian.Uint32(b[1:5]) != queryHash(o) {
		return nil, fmt.Errorf("embedded: list: %w: from another query", async.ErrBadCursor)
	}
	return b[5:], nil
}
