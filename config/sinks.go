package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Every sink that can fail (all but log) has Timeout (one delivery
// attempt; defaults to 10s) and Retry (redelivery; defaults: 10 attempts,
// 1s initial, 5m max interval, multiplier 2, max age 24h). When retries
// run out the delivery is recorded as failed (metric, log, the task's
// deliveries), never dropped silently.

// destinationDefaults fills the sinks' timeouts and retry policies.
func destinationDefaults(ds []Destination) {
	for _, d := range ds {
		_, sinks := d.kinds()
		for _, s := range sinks {
			if timeout, retry := s.delivery(); timeout != nil {
				setDefault(timeout, Duration(DefaultWebhookTimeout))
				retry.applyDefaults(DefaultSinkMaxAttempts, Duration(DefaultSinkMaxAge))
			}
			s.applyDefaults()
		}
	}
}

func (v *validator) destinations(p string, ds []Destination) {
	for i, d := range ds {
		dp := fmt.Sprintf("%s[%d]", p, i)
		kinds, sinks := d.kinds()
		if len(sinks) > 0 {
			sinks[0].validate(v, dp+"."+kinds[0])
		}
		if _, retry := d.Delivery(); retry != nil {
			v.retry(dp+"."+d.Kind()+".retry", *retry)
		}
		v.exactlyOne(dp, kinds, SinkKinds()...)
	}
}

// selfLoops warns about destinations that send a function's outcomes to
// the source of a trigger of the same function: each outcome triggers the
// function again. It is a warning, not an error: a bounded self-requeue
// can be intended, and the loop guard stops an unbounded one.
func (v *validator) selfLoops(c *Config) {
	for i := range c.Triggers {
		t := &c.Triggers[i]
		f := c.FunctionOf(t)
		if f == nil {
			continue
		}
		fi := slices.IndexFunc(c.Functions, func(g Function) bool { return g.Name == f.Name && g.Tenant == f.Tenant })
		lists := []struct {
			path string
			ds   []Destination
		}{
			{fmt.Sprintf("functions[%d].destinations.on_success", fi), f.Destinations.OnSuccess},
			{fmt.Sprintf("triggers[%d].destinations.on_failure", i), t.Destinations.OnFailure},
		}
		if len(t.Destinations.OnFailure) == 0 { // the trigger's own on_failure replaces the function's
			lists[1].path, lists[1].ds = fmt.Sprintf("functions[%d].destinations.on_failure", fi), f.Destinations.OnFailure
		}
		for _, l := range lists {
			for j, d := range l.ds {
				if what := feeds(d, t.Source); what != "" {
					p := fmt.Sprintf("%s[%d]", l.path, j)
					v.warn(p, "sends %s, which trigger %q reads: function %q triggers itself; the loop guard stops the chain after loop_guard.max_hops (%d) invocations",
						what, t.Name, f.Name, c.LoopGuard.MaxHops)
				}
			}
		}
	}
}

// feeds describes what d sends to when that is where s reads from, else
// "": the first of d's kinds that s has too decides.
func feeds(d Destination, s Source) string {
	_, sinks := d.kinds()
	for _, k := range sinks {
		if f, ok := k.(feeder); ok {
			if what, sameKind := f.feeds(s); sameKind {
				return what
			}
		}
	}
	return ""
}

// overlap reports whether two address lists share an address.
func overlap(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// sameServer reports whether two broker URLs name the same host and path
// (credentials aside).
func sameServer(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return strings.EqualFold(ua.Host, ub.Host) && strings.TrimSuffix(ua.Path, "/") == strings.TrimSuffix(ub.Path, "/")
}
