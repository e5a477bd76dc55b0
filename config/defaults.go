package config

import "math"

// ApplyDefaults sets every zero field of c that has a default to its
// Default* value; Parse calls it after decoding. A store with neither
// embedded nor redis becomes embedded under ./data. It is idempotent.
func (c *Config) ApplyDefaults() {
	s := &c.Server
	setDefault(&s.Listen, DefaultListen)
	setDefault(&s.MaxPayload, DefaultMaxPayload)
	setDefault(&s.ShutdownTimeout, Duration(DefaultShutdownTimeout))
	setDefault(&s.ReadHeaderTimeout, Duration(DefaultReadHeaderTimeout))
	if s.GCHeapFloor == nil {
		floor := ByteSize(DefaultGCHeapFloor)
		s.GCHeapFloor = &floor
	}

	if c.Store.Embedded == nil && c.Store.Redis == nil {
		c.Store.Embedded = &EmbeddedStore{}
	}
	if c.Store.Embedded != nil {
		setDefault(&c.Store.Embedded.Path, DefaultDataPath)
	}
	if c.Store.Redis != nil {
		setDefault(&c.Store.Redis.Prefix, DefaultRedisPrefix)
	}
	setDefault(&c.Store.Retention, Duration(DefaultRetention))

	setDefault(&c.LoopGuard.MaxHops, DefaultMaxHops)
	setDefault(&c.LoopGuard.TraceWindow, Duration(DefaultTraceWindow))
	setDefault(&c.Dispatcher.Workers, DefaultWorkers)
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Format, "json")

	for i := range c.Tenants {
		t := &c.Tenants[i]
		setDefault(&t.MaxConcurrency, DefaultTenantConcurrency)
		setDefault(&t.MaxQueued, DefaultMaxQueued)
		setDefault(&t.Burst, defaultBurst(t.Rate))
	}
	for i := range c.Functions {
		f := &c.Functions[i]
		setDefault(&f.MaxConcurrency, DefaultFunctionConc)
		setDefault(&f.Burst, defaultBurst(f.Rate))
		if b := f.Backend.HTTP; b != nil {
			setDefault(&b.Timeout, Duration(DefaultHTTPTimeout))
		}
		if b := f.Backend.Exec; b != nil {
			setDefault(&b.Timeout, Duration(DefaultExecTimeout))
		}
		if b := f.Backend.Go; b != nil {
			setDefault(&b.Timeout, Duration(DefaultGoTimeout))
		}
		f.Retry.applyDefaults(DefaultMaxAttempts, Duration(DefaultMaxAge))
		destinationDefaults(f.Destinations.OnSuccess)
		destinationDefaults(f.Destinations.OnFailure)
	}
	for i := range c.Triggers {
		c.Triggers[i].applyDefaults()
	}
}

// applyDefaults fills a retry policy; only attempts and age differ between
// functions and sinks.
func (r *Retry) applyDefaults(attempts int, maxAge Duration) {
	setDefault(&r.MaxAttempts, attempts)
	setDefault(&r.InitialInterval, Duration(DefaultInitialInterval))
	setDefault(&r.MaxInterval, Duration(DefaultMaxInterval))
	setDefault(&r.Multiplier, DefaultMultiplier)
	setDefault(&r.MaxAge, maxAge)
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// defaultBurst is a tenth of a second's worth of rate, at least 1 (0 when
// there is no rate).
func defaultBurst(rate float64) int {
	if !(rate > 0) {
		return 0
	}
	return max(1, int(math.Ceil(rate/10)))
}
