package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTimerDefaults(t *testing.T) {
	t.Parallel()
	src := triggerBase + `  - name: tick
    function: f
    source: { timer: { cron: "*/5 * * * *" } }
  - name: berlin
    function: f
    source:
      timer:
        cron: "@every 10s"
        timezone: Europe/Berlin
        payload: { report: daily, n: 3, ratio: 0.5, tags: [a, true, null], key: "${KEY}" }
    catch_up: all
    max_lateness: 30m
`
	c, err := Parse("t.yaml", []byte(src), lookup(map[string]string{"KEY": "v"}))
	if err != nil {
		t.Fatal(err)
	}
	tick, berlin := c.Triggers[0], c.Triggers[1]
	if tick.CatchUp != "last" || tick.MaxLateness.D() != time.Hour || tick.Source.Timer.Timezone != "UTC" || string(tick.Source.Timer.Payload) != "{}" {
		t.Errorf("timer defaults: catch_up %q, max_lateness %s, timezone %q, payload %s; want last, 1h, UTC, {}",
			tick.CatchUp, tick.MaxLateness.D(), tick.Source.Timer.Timezone, tick.Source.Timer.Payload)
	}
	if tick.Source.Kind() != "timer" {
		t.Errorf("Kind = %q, want timer", tick.Source.Kind())
	}
	want := `{"key":"v","n":3,"ratio":0.5,"report":"daily","tags":["a",true,null]}`
	if got := string(berlin.Source.Timer.Payload); got != want {
		t.Errorf("payload = %s, want %s", got, want)
	}
	if berlin.CatchUp != "all" || berlin.MaxLateness.D() != 30*time.Minute {
		t.Errorf("catch_up %q max_lateness %s; want all, 30m", berlin.CatchUp, berlin.MaxLateness.D())
	}
	s, err := berlin.Source.Timer.Schedule()
	if err != nil || s.Location().String() != "Europe/Berlin" {
		t.Errorf("Schedule = %v, %v", s, err)
	}
	// A broker trigger gets no timer defaults.
	c, err = Parse("t.yaml", []byte(triggerBase+`  - { name: r, function: f, source: { redis: { url: "redis://h:6379", stream: s } } }`+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Triggers[0]; r.CatchUp != "" || r.MaxLateness != 0 {
		t.Errorf("broker trigger: catch_up %q max_lateness %s; want neither", r.CatchUp, r.MaxLateness.D())
	}
}

func TestTimerProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, trigger, want string
	}{
		{"NoCron", `  - { name: t1, function: f, source: { timer: {} } }`,
			`t.yaml:9: triggers[0].source.timer.cron: is required`},
		{"BadCron", `  - { name: t1, function: f, source: { timer: { cron: "* * *" } } }`,
			`t.yaml:9: triggers[0].source.timer.cron: "* * *" is not a cron expression`},
		{"UnknownDescriptor", `  - { name: t1, function: f, source: { timer: { cron: "@fortnightly" } } }`,
			`t.yaml:9: triggers[0].source.timer.cron: "@fortnightly" is not a cron expression`},
		{"ZoneInCron", `  - { name: t1, function: f, source: { timer: { cron: "TZ=Europe/Berlin 0 * * * *" } } }`,
			`t.yaml:9: triggers[0].source.timer.cron: a time zone prefix is not allowed in the expression: set timezone instead`},
		{"ZoneInCronWithoutSpace", `  - { name: t1, function: f, source: { timer: { cron: "CRON_TZ=UTC" } } }`,
			`t.yaml:9: triggers[0].source.timer.cron: a time zone prefix is not allowed`},
		{"EveryFraction", `  - { name: t1, function: f, source: { timer: { cron: "@every 1500ms" } } }`,
			`t.yaml:9: triggers[0].source.timer.cron: @every 1.5s: the interval must be a whole number of seconds, at least 1s`},
		{"EveryNotADuration", `  - { name: t1, function: f, source: { timer: { cron: "@every soon" } } }`,
			`t.yaml:9: triggers[0].source.timer.cron: @every "soon" is not a duration`},
		{"NeverMatches", `  - { name: t1, function: f, source: { timer: { cron: "0 0 30 2 *" } } }`,
			`t.yaml:9: triggers[0].source.timer.cron: "0 0 30 2 *" never matches a date`},
		{"UnknownZone", `  - { name: t1, function: f, source: { timer: { cron: "@daily", timezone: Europe/Atlantis } } }`,
			`t.yaml:9: triggers[0].source.timer.timezone: "Europe/Atlantis" is not a known time zone`},
		{"LocalZone", `  - { name: t1, function: f, source: { timer: { cron: "@daily", timezone: Local } } }`,
			`t.yaml:9: triggers[0].source.timer.timezone: "Local" depends on each machine's settings`},
		{"CatchUp", `  - { name: t1, function: f, catch_up: sometimes, source: { timer: { cron: "@daily" } } }`,
			`t.yaml:9: triggers[0].catch_up: "sometimes" is not one of none, last, all`},
		{"MaxLatenessNegative", `  - { name: t1, function: f, max_lateness: -1h, source: { timer: { cron: "@daily" } } }`,
			`t.yaml:9: triggers[0].max_lateness: "-1h" is negative`},
		{"MaxLatenessOverWindow", `  - { name: t1, function: f, max_lateness: 48h, source: { timer: { cron: "@daily" } } }`,
			`t.yaml:9: triggers[0].max_lateness: 48h0m0s is longer than 24h0m0s`},
		{"Batch", "  - name: t1\n    function: f\n    source: { timer: { cron: \"@daily\" } }\n    batch: { size: 1 }",
			`t.yaml:12: triggers[0].batch: a timer trigger takes no batch`},
		{"Concurrency", `  - { name: t1, function: f, concurrency: 4, source: { timer: { cron: "@daily" } } }`,
			`t.yaml:9: triggers[0].concurrency: a timer trigger takes no concurrency`},
		{"Filter", `  - { name: t1, function: f, filter: { json: { a: b } }, source: { timer: { cron: "@daily" } } }`,
			`t.yaml:9: triggers[0].filter: a timer trigger takes no filter`},
		{"Start", `  - { name: t1, function: f, start: latest, source: { timer: { cron: "@daily" } } }`,
			`t.yaml:9: triggers[0].start: a timer trigger takes no start (use catch_up)`},
		{"CatchUpOnBroker", `  - { name: t1, function: f, catch_up: all, source: { redis: { url: "redis://h:6379", stream: s } } }`,
			`t.yaml:9: triggers[0].catch_up: applies to timer triggers only`},
		{"MaxLatenessOnBroker", "  - name: t1\n    function: f\n    source: { redis: { url: \"redis://h:6379\", stream: s } }\n    max_lateness: 0s",
			`t.yaml:12: triggers[0].max_lateness: applies to timer triggers only`},
		{"PayloadNaN", `  - { name: t1, function: f, source: { timer: { cron: "@daily", payload: { x: .nan } } } }`,
			`t.yaml:9: triggers[0].source.timer.payload.x: ".nan" is not a JSON number`},
		{"PayloadMissingEnv", `  - { name: t1, function: f, source: { timer: { cron: "@daily", payload: { x: "${NOPE}" } } } }`,
			`t.yaml:9: triggers[0].source.timer.payload.x: environment variable NOPE is not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("t.yaml", []byte(triggerBase+tt.trigger+"\n"), nil)
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v, want Problems", err)
			}
			if !strings.Contains(probs.Error(), tt.want) {
				t.Fatalf("problems:\n%s\nwant a line containing %q", probs.Error(), tt.want)
			}
		})
	}
}
