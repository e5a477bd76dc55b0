package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("30s", "5m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration parses a non-negative Go duration string.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use e.g. 500ms, 30s, 5m, 6h)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return Duration(d), nil
}

// ByteSize is a size in bytes, written as a number or with a unit: B, KB,
// KiB, MB, MiB, GB, GiB (KB = 1000, KiB = 1024).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses "256KiB", "1MB", "1024".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size (use e.g. 256KiB, 1MiB or a number of bytes)", s)
	}
	return ByteSize(n * mult), nil
}

// FreeSpace is a free-space reserve: Bytes, or Percent of the filesystem
// when Percent > 0.
type FreeSpace struct {
	Bytes   int64
	Percent float64
}

// ParseFreeSpace parses a reserve: a size ("256MiB", "0") or a
// percentage ("5%", "2.5%"); "" is the zero FreeSpace (the default).
func ParseFreeSpace(s string) (FreeSpace, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return FreeSpace{}, nil
	}
	if p, ok := strings.CutSuffix(t, "%"); ok {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || x <= 0 || x >= 100 {
			return FreeSpace{}, fmt.Errorf("%q is not a percentage between 0 and 100 (use e.g. 5%%)", s)
		}
		return FreeSpace{Percent: x}, nil
	}
	n, err := ParseByteSize(t)
	if err != nil {
		return FreeSpace{}, fmt.Errorf("%q is neither a size (e.g. 256MiB) nor a percentage (e.g. 5%%)", s)
	}
	return FreeSpace{Bytes: int64(n)}, nil
}
