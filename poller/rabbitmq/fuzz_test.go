package rabbitmq

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// FuzzHeaders: any AMQP header values (text, bytes, numbers, decimals,
// times, nested tables and arrays) become header strings without a panic;
// nested values become valid JSON unless they hold a float JSON cannot
// carry.
func FuzzHeaders(f *testing.F) {
	f.Add("text", []byte("bytes"), int64(42), 1.5, uint8(2), int32(12345), int64(1700000000))
	f.Add("", []byte{0xff}, int64(math.MinInt64), math.Inf(1), uint8(255), int32(-1), int64(-62135596800))
	f.Add("\x00", []byte(nil), int64(0), math.NaN(), uint8(0), int32(math.MaxInt32), int64(253402300800))
	f.Fuzz(func(t *testing.T, s string, b []byte, n int64, x float64, scale uint8, dv int32, unix int64) {
		d := amqp.Decimal{Scale: scale, Value: dv}
		tm := time.Unix(unix, 0)
		for _, v := range []any{nil, s, b, n, x, float32(x), true, d, tm, int8(n), uint64(n)} {
			_ = stringify(v)
		}
		nested := amqp.Table{"s": s, "b": b, "n": n, "d": d, "t": tm, "a": []any{s, n, amqp.Table{"x": b}}}
		out := stringify(nested)
		if !json.Valid([]byte(out)) {
			t.Fatalf("nested table rendered as %q, not JSON", out)
		}
		withFloat := stringify([]any{x})
		if !math.IsNaN(x) && !math.IsInf(x, 0) && !json.Valid([]byte(withFloat)) {
			t.Fatalf("array of %v rendered as %q, not JSON", x, withFloat)
		}
	})
}
