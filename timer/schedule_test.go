package timer

import (
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// ticksBetween lists s's ticks in (from, to].
func ticksBetween(s *Schedule, from, to time.Time) []time.Time {
	var out []time.Time
	for at := s.Next(from); !at.IsZero() && !at.After(to); at = s.Next(at) {
		out = append(out, at)
	}
	return out
}

// walls formats instants as wall times with their offset in loc.
func walls(ts []time.Time, loc *time.Location) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.In(loc).Format("15:04-07")
	}
	return strings.Join(parts, " ")
}

// hoursOf lists the wall times "HH:MM-07" of the given hours and minutes
// at offset off.
func hoursOf(from, to int, minutes []int, off string) []string {
	var out []string
	for h := from; h <= to; h++ {
		for _, m := range minutes {
			out = append(out, time.Date(2000, 1, 1, h, m, 0, 0, time.UTC).Format("15:04")+off)
		}
	}
	return out
}

// TestScheduleDST: on the days Europe/Berlin's clocks jump, every wall
// time ticks once: the repeated hour (fall back) once, at its first
// occurrence; a wall time that vanishes (spring forward) at the jump.
func TestScheduleDST(t *testing.T) {
	t.Parallel()
	loc := berlin(t)
	spring := time.Date(2026, 3, 29, 0, 0, 0, 0, loc)
	fall := time.Date(2026, 10, 25, 0, 0, 0, 0, loc)
	half := []int{0, 30}
	tests := []struct {
		name, expr string
		day        time.Time
		want       []string
	}{
		// 02:30 does not exist on the spring day: it ticks at the jump,
		// 02:00 CET = 03:00 CEST.
		{"SpringDaily0230", "30 2 * * *", spring, []string{"03:00+02"}},
		{"SpringHourly", "0 * * * *", spring, append(hoursOf(0, 1, []int{0}, "+01"), hoursOf(3, 23, []int{0}, "+02")...)},
		// 02:00 and 02:30 vanish: both land on the jump, which 03:00
		// ticks at anyway: one tick.
		{"SpringHalfHourly", "*/30 * * * *", spring, append(hoursOf(0, 1, half, "+01"), hoursOf(3, 23, half, "+02")...)},
		{"SpringWithSeconds", "0 30 2 * * *", spring, []string{"03:00+02"}},
		// 02:00-02:59 happens twice on the fall day: once only.
		{"FallDaily0230", "30 2 * * *", fall, []string{"02:30+02"}},
		{"FallHourly", "0 * * * *", fall, append(hoursOf(0, 2, []int{0}, "+02"), hoursOf(3, 23, []int{0}, "+01")...)},
		{"FallHalfHourly", "*/30 * * * *", fall, append(hoursOf(0, 2, half, "+02"), hoursOf(3, 23, half, "+01")...)},
		{"FallDaily", "@daily", fall, []string{"00:00+02"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustSchedule(t, tt.expr, loc)
			got := ticksBetween(s, tt.day.Add(-time.Second), tt.day.AddDate(0, 0, 1).Add(-time.Second))
			if g, w := walls(got, loc), strings.Join(tt.want, " "); g != w {
				t.Errorf("ticks on %s:\n got %s\nwant %s", tt.day.Format(time.DateOnly), g, w)
			}
		})
	}
}

// TestScheduleDSTAroundTheDay: the days around a jump tick at their wall
// times, and a daily tick is 24h ± the jump from the one before.
func TestScheduleDSTAroundTheDay(t *testing.T) {
	t.Parallel()
	loc := berlin(t)
	s := mustSchedule(t, "30 2 * * *", loc)
	from := time.Date(2026, 3, 27, 0, 0, 0, 0, loc)
	got := walls(ticksBetween(s, from, from.AddDate(0, 0, 4)), loc)
	if want := "02:30+01 02:30+01 03:00+02 02:30+02"; got != want {
		t.Errorf("spring: got %s, want %s", got, want)
	}
	from = time.Date(2026, 10, 23, 0, 0, 0, 0, loc)
	got = walls(ticksBetween(s, from, from.AddDate(0, 0, 4)), loc)
	if want := "02:30+02 02:30+02 02:30+02 02:30+01"; got != want {
		t.Errorf("fall: got %s, want %s", got, want)
	}
}

// TestRobfigDST records what robfig/cron/v3's SpecSchedule.Next does at
// the jumps, which Schedule corrects: it loses a wall time inside the
// vanished hour and runs one in the repeated hour twice.
func TestRobfigDST(t *testing.T) {
	t.Parallel()
	loc := berlin(t)
	raw, err := parser.Parse("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	spec := raw.(*cron.SpecSchedule)
	spec.Location = loc
	count := func(day time.Time) int {
		n := 0
		end := day.AddDate(0, 0, 1)
		for at := spec.Next(day.Add(-time.Second)); at.Before(end); at = spec.Next(at) {
			n++
		}
		return n
	}
	if n := count(time.Date(2026, 3, 29, 0, 0, 0, 0, loc)); n != 0 {
		t.Errorf("robfig ticks %d times on the spring day; this test expected 0 (the tick is lost): Schedule's correction may be stale", n)
	}
	if n := count(time.Date(2026, 10, 25, 0, 0, 0, 0, loc)); n != 2 {
		t.Errorf("robfig ticks %d times on the fall day; this test expected 2 (the tick is doubled): Schedule's correction may be stale", n)
	}
}

// TestEveryIsEpochAligned: @every d ticks at the multiples of d since the
// Unix epoch, whenever it is asked and in whatever zone.
func TestEveryIsEpochAligned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		loc  *time.Location
		from time.Time
		want time.Time
	}{
		{"@every 1s", time.UTC, time.Unix(100, 0), time.Unix(101, 0)},
		{"@every 1s", time.UTC, time.Unix(100, 999_999_999), time.Unix(101, 0)},
		{"@every 7s", time.UTC, time.Unix(100, 0), time.Unix(105, 0)},
		{"@every 7s", time.UTC, time.Unix(104, 500), time.Unix(105, 0)},
		{"@every 7s", time.UTC, time.Unix(105, 0), time.Unix(112, 0)},
		{"@every 90m", berlin(t), time.Unix(5400*3+17, 0), time.Unix(5400*4, 0)},
		{"@every 1h", berlin(t), time.Date(2026, 3, 29, 0, 59, 0, 0, time.UTC), time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		{"@every 1m", time.UTC, time.Unix(-30, 0), time.Unix(0, 0)},
	}
	for _, tt := range tests {
		s := mustSchedule(t, tt.expr, tt.loc)
		if got := s.Next(tt.from); !got.Equal(tt.want) {
			t.Errorf("%s Next(%d.%09d) = %d, want %d", tt.expr, tt.from.Unix(), tt.from.Nanosecond(), got.Unix(), tt.want.Unix())
		}
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	loc := berlin(t)
	at := time.Date(2026, 6, 1, 10, 0, 5, 0, loc)
	tests := []struct {
		expr string
		want time.Time
	}{
		{"*/5 * * * *", time.Date(2026, 6, 1, 10, 5, 0, 0, loc)},
		{"*/10 * * * * *", time.Date(2026, 6, 1, 10, 0, 10, 0, loc)},
		{"@hourly", time.Date(2026, 6, 1, 11, 0, 0, 0, loc)},
		{"@daily", time.Date(2026, 6, 2, 0, 0, 0, 0, loc)},
		{"@midnight", time.Date(2026, 6, 2, 0, 0, 0, 0, loc)},
		{"@weekly", time.Date(2026, 6, 7, 0, 0, 0, 0, loc)},
		{"@monthly", time.Date(2026, 7, 1, 0, 0, 0, 0, loc)},
		{"@yearly", time.Date(2027, 1, 1, 0, 0, 0, 0, loc)},
		{"0 9 * * mon-fri", time.Date(2026, 6, 2, 9, 0, 0, 0, loc)},
		{"  @every 10s ", time.Date(2026, 6, 1, 10, 0, 10, 0, loc)},
	}
	for _, tt := range tests {
		s := mustSchedule(t, tt.expr, loc)
		if got := s.Next(at); !got.Equal(tt.want) {
			t.Errorf("%q Next = %v, want %v", tt.expr, got.In(loc), tt.want)
		}
	}
	for _, bad := range []string{"", "* * *", "61 * * * *", "@fortnightly", "TZ=UTC * * * * *", "CRON_TZ=UTC", "@every 0s", "@every 1500ms", "@every x", "0 0 30 2 *"} {
		if _, err := ParseSchedule(bad, loc); err == nil {
			t.Errorf("ParseSchedule(%q) = nil error, want one", bad)
		}
	}
}
