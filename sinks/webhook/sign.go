package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret; the rest is the base64 key.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a webhook-timestamp may be from now when
// Verify is given no tolerance (the Standard Webhooks reference uses 5m).
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify and by New for a bad secret. Verify wraps them
// with details; check them with errors.Is.
var (
	// ErrInvalidSecret: the secret is not "whsec_" followed by a
	// non-empty base64 key.
	ErrInvalidSecret = errors.New("webhook: secret must be whsec_ followed by a base64 key")
	// ErrMissingHeaders: webhook-id, webhook-timestamp or
	// webhook-signature is absent.
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	// ErrInvalidTimestamp: webhook-timestamp is not unix seconds.
	ErrInvalidTimestamp = errors.New("webhook: invalid webhook-timestamp")
	// ErrTimestampOutOfRange: webhook-timestamp is further from now than
	// the tolerance (a replay, or a skewed clock).
	ErrTimestampOutOfRange = errors.New("webhook: webhook-timestamp outside tolerance")
	// ErrNoMatchingSignature: no v1 signature matches the content.
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// decodeSecret returns the HMAC key of a "whsec_<base64>" secret.
func decodeSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, ErrInvalidSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, ErrInvalidSecret
	}
	return key, nil
}

// mac is the raw HMAC-SHA256 of "msgID.timestamp.body".
func mac(key []byte, msgID string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the webhook-signature value ("v1,<base64 HMAC-SHA256>") of
// body sent with msgID at ts (truncated to unix seconds), per Standard
// Webhooks.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, msgID, ts.Unix(), body)), nil
}

// Verify checks a received webhook: the headers are present, the
// timestamp is within tolerance of now (either side; tolerance <= 0 means
// DefaultTolerance), and one of the space-separated v1 signatures matches
// body (compared in constant time). Signatures of other versions are
// ignored. It returns nil or an error wrapping one of the Err* values.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	id, tsv, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsv == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsv, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrInvalidTimestamp, tsv)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// Compare in seconds: no arithmetic on ts, so no overflow.
	tol, n := int64(tolerance/time.Second), now.Unix()
	if ts < n-tol || ts > n+tol {
		return fmt.Errorf("%w: %d, now %d", ErrTimestampOutOfRange, ts, now.Unix())
	}
	want := mac(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		v, b64, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}
