// Package config defines Ferry's typed configuration, loads it from YAML
// with ${VAR} expansion and defaults, and validates it, reporting every
// problem as "FILE:LINE: message".
package config

import "time"

// Defaults applied by Load when a field is zero.
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultMaxPayload        = 256 << 10
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultGCHeapFloor       = 64 << 20
	DefaultDataPath          = "./data"
	DefaultRedisPrefix       = "ferry"
	DefaultRetention         = 24 * time.Hour
	DefaultMaxHops           = 16
	DefaultTraceWindow       = 10 * time.Minute
	DefaultWorkers           = 64
	DefaultTenantConcurrency = 100
	DefaultMaxQueued         = 100000
	DefaultFunctionConc      = 10
	DefaultHTTPTimeout       = 30 * time.Second
	DefaultExecTimeout       = 10 * time.Second
	DefaultGoTimeout         = 30 * time.Second
	DefaultMaxAttempts       = 3
	DefaultInitialInterval   = time.Second
	DefaultMaxInterval       = 5 * time.Minute
	DefaultMultiplier        = 2.0
	DefaultMaxAge            = 6 * time.Hour
	DefaultWebhookTimeout    = 10 * time.Second
	DefaultSinkMaxAttempts   = 10
	DefaultSinkMaxAge        = 24 * time.Hour
)

// Config is the whole of ferry.yaml.
type Config struct {
	Server     Server     `yaml:"server"`
	Store      Store      `yaml:"store"`
	LoopGuard  LoopGuard  `yaml:"loop_guard"`
	Dispatcher Dispatcher `yaml:"dispatcher"`
	Log        Log        `yaml:"log"`
	Telemetry  Telemetry  `yaml:"telemetry"`
	Tenants    []Tenant   `yaml:"tenants"`
	Functions  []Function `yaml:"functions"`
	Triggers   []Trigger  `yaml:"triggers"`

	// File is the path the config was loaded from ("" when built in code).
	File string `yaml:"-"`
	// Warnings are things valid but likely wrong (a function whose outcomes
	// feed its own trigger), "FILE:LINE: warning: ..." each; set by Parse.
	Warnings Problems `yaml:"-"`
}

// Server configures the HTTP API listener.
type Server struct {
	// Listen is the address of the API. Defaults to 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// MaxPayload bounds a task's body ("256KiB", "1MiB", or bytes).
	// Defaults to 256 KiB.
	MaxPayload ByteSize `yaml:"max_payload"`
	// ShutdownTimeout bounds the drain of in-flight work on SIGTERM.
	// Defaults to 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout bounds reading a request's headers. Defaults to 5s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// GCHeapFloor is the heap size below which Go's garbage collector
	// does not run (GOGC is raised while the live heap is under half of
	// it): it trades up to this much memory for far fewer collections
	// under load. 0 turns it off; so does GOGC in the environment.
	// Defaults to 64 MiB.
	GCHeapFloor *ByteSize `yaml:"gc_heap_floor"`
	// AdminKeys are bearer keys that see every tenant on the dashboard
	// (GET /ui/, GET /v1/stats) and act for the tenant a request names
	// with the Ferry-Tenant header on the task endpoints. Optional.
	AdminKeys []string `yaml:"admin_keys"`
	// MaxConnections caps the API's open connections: more wait in the
	// listen backlog, and once at the cap the connection idle longest is
	// closed for each new one. Defaults to 4096 or a quarter of the
	// process's open-file limit (raised to its hard limit at start),
	// whichever is lower (ConnectionCap).
	MaxConnections int `yaml:"max_connections"`
	// TLS, when set, serves the API (and /metrics with it, unless
	// MetricsListen moves it) over HTTPS.
	TLS *TLS `yaml:"tls"`
	// MetricsListen, when set (HOST:PORT), serves /metrics on a listener
	// of its own, plain HTTP, and /metrics on the API's listener answers
	// 404. Defaults to "": /metrics on the API's listener.
	MetricsListen string `yaml:"metrics_listen"`
}

// Store selects the task store: exactly one of Embedded or Redis.
type Store struct {
	Embedded *EmbeddedStore `yaml:"embedded"`
	Redis    *RedisStore    `yaml:"redis"`
	// Retention is how long finished tasks keep their status and output.
	// Defaults to 24h.
	Retention Duration `yaml:"retention"`
}

// EmbeddedStore is the single-node store on local disk.
type EmbeddedStore struct {
	// Path is the data directory. Defaults to ./data.
	Path string `yaml:"path"`
	// MinFree is the free-space reserve of the data directory's
	// filesystem: a size ("256MiB") or a percentage of the filesystem
	// ("5%"). Below it submits answer 507 store_full and /readyz 503,
	// while running tasks still finish. Defaults to the smaller of 256 MiB
	// and 5 %; "0" turns the reserve off.
	MinFree string `yaml:"min_free"`
	// WALRecovery says what to do when the write-ahead log ends in a
	// damaged record that hides writes after it: "tolerate" (default)
	// starts with what could be replayed and logs an ERROR naming what was
	// dropped; "strict" refuses to start.
	WALRecovery string `yaml:"wal_recovery"`
}

// WAL recovery modes (store.embedded.wal_recovery).
const (
	WALTolerate = "tolerate"
	WALStrict   = "strict"
)

// RedisStore is the shared store of a service of many nodes: every
// `ferry serve` with the same store.redis and tenants is one service
// (each with its own server.listen). Set exactly one of URL or Sentinel.
type RedisStore struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS.
	URL string `yaml:"url"`
	// Prefix starts every key, so that services (or environments) share
	// one Redis without seeing each other: 1 to 64 letters, digits, '.',
	// '_' or '-'. Defaults to "ferry".
	Prefix string `yaml:"prefix"`
	// Sentinel finds the Redis master through Redis Sentinel instead of
	// a URL.
	Sentinel *RedisSentinel `yaml:"sentinel"`
}

// RedisSentinel names a master watched by Redis Sentinel.
type RedisSentinel struct {
	// Master is the master's name in the sentinels' config.
	Master string `yaml:"master"`
	// Addrs are the sentinels, host:port each; at least one.
	Addrs []string `yaml:"addrs"`
	// Username and Password authenticate to the sentinels and to the
	// master they name; both optional.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// LoopGuard bounds invocation chains.
type LoopGuard struct {
	// MaxHops: an invocation whose hop count is at least MaxHops is not
	// run and fails with loop_detected; so is an invocation of a function
	// that already ran MaxHops times in the same W3C trace within
	// TraceWindow. Defaults to 16.
	MaxHops int `yaml:"max_hops"`
	// TraceWindow is how long invocations are counted per (trace id,
	// function). Defaults to 10m.
	TraceWindow Duration `yaml:"trace_window"`
}

// Dispatcher sizes the shared worker pool.
type Dispatcher struct {
	// Workers bounds the async tasks in flight across all tenants; fairness
	// decides who gets a free worker. Triggers are bounded by their own
	// concurrency; both by the tenant and function limits. Defaults to 64.
	Workers int `yaml:"workers"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error. Defaults to info.
	Level string `yaml:"level"`
	// Format is json or text. Defaults to json.
	Format string `yaml:"format"`
}

// Tenant is an isolated user of Ferry.
type Tenant struct {
	Name string `yaml:"name"`
	// APIKeys are the bearer keys that name this tenant.
	APIKeys []string `yaml:"api_keys"`
	// MaxConcurrency bounds the tenant's invocations in flight. Defaults to 100.
	MaxConcurrency int `yaml:"max_concurrency"`
	// MaxQueued bounds the tenant's unfinished tasks. Defaults to 100000.
	MaxQueued int `yaml:"max_queued"`
	// Rate bounds the tenant's invocations per second (token bucket; 0:
	// unlimited). Over it the API answers 429 with Retry-After, queued
	// tasks wait and triggers slow down.
	Rate float64 `yaml:"rate"`
	// Burst is the token bucket's size. Defaults to a tenth of Rate, at
	// least 1.
	Burst int `yaml:"burst"`
}

// Function is an invocable target owned by a tenant.
type Function struct {
	Name    string  `yaml:"name"`
	Tenant  string  `yaml:"tenant"`
	Backend Backend `yaml:"backend"`
	// MaxConcurrency bounds the function's invocations in flight. Defaults to 10.
	MaxConcurrency int `yaml:"max_concurrency"`
	// Rate bounds the function's invocations per second (token bucket; 0:
	// unlimited), as Tenant.Rate.
	Rate float64 `yaml:"rate"`
	// Burst is the token bucket's size. Defaults to a tenth of Rate, at
	// least 1.
	Burst        int          `yaml:"burst"`
	Retry        Retry        `yaml:"retry"`
	Destinations Destinations `yaml:"destinations"`
}

// Backend selects how a function runs: exactly one of HTTP, Exec or Go.
type Backend struct {
	HTTP *HTTPBackend `yaml:"http"`
	Exec *ExecBackend `yaml:"exec"`
	// Go names a function registered in-process by a program that embeds
	// Ferry as a library.
	Go *GoBackend `yaml:"go"`
}

// HTTPBackend invokes a function URL with a CloudEvents binary-mode POST.
type HTTPBackend struct {
	URL string `yaml:"url"`
	// Timeout bounds one attempt. Defaults to 30s.
	Timeout Duration `yaml:"timeout"`
	// Headers are added to every request (e.g. an authorization header).
	Headers map[string]string `yaml:"headers"`
}

// ExecBackend runs a local process per invocation: payload on stdin, output
// on stdout.
type ExecBackend struct {
	// Command is the program and its arguments. The program must exist and
	// be executable when the config is loaded: a name without a slash is
	// looked up in PATH, a relative path is taken relative to Dir.
	Command []string `yaml:"command"`
	// Env is added to the child's environment, which otherwise holds only
	// PATH, HOME and the FERRY_* variables (never Ferry's own environment).
	Env map[string]string `yaml:"env"`
	// Dir is the child's working directory; it must exist. Defaults to
	// Ferry's.
	Dir string `yaml:"dir"`
	// User runs the child as another user: a name or "uid[:gid]". Ferry
	// must run as root for it. Defaults to Ferry's own user.
	User string `yaml:"user"`
	// Timeout bounds one attempt; the whole process group is killed after
	// it. Defaults to 10s.
	Timeout Duration `yaml:"timeout"`
}

// GoBackend refers to a Go function registered in-process.
type GoBackend struct {
	// Timeout bounds one attempt. Defaults to 30s.
	Timeout Duration `yaml:"timeout"`
}

// Retry is a retry policy with exponential backoff and jitter.
type Retry struct {
	// MaxAttempts counts the first attempt. Defaults to 3.
	MaxAttempts int `yaml:"max_attempts"`
	// InitialInterval is the first backoff. Defaults to 1s.
	InitialInterval Duration `yaml:"initial_interval"`
	// MaxInterval caps every backoff, Retry-After included. Defaults to 5m.
	MaxInterval Duration `yaml:"max_interval"`
	// Multiplier grows the backoff per attempt. Defaults to 2.
	Multiplier float64 `yaml:"multiplier"`
	// MaxAge: no attempt starts later than this after the task was created.
	// Defaults to 6h.
	MaxAge Duration `yaml:"max_age"`
}

// Destinations receive a function's outcomes.
type Destinations struct {
	OnSuccess []Destination `yaml:"on_success"`
	OnFailure []Destination `yaml:"on_failure"`
}

// Destination is exactly one sink. Each field is a destination kind (see
// kinds.go): its yaml name is the kind, its type the kind's config.
type Destination struct {
	Webhook  *WebhookSink  `yaml:"webhook"`
	Kafka    *KafkaSink    `yaml:"kafka"`
	RocketMQ *RocketMQSink `yaml:"rocketmq"`
	RabbitMQ *RabbitMQSink `yaml:"rabbitmq"`
	Redis    *RedisSink    `yaml:"redis"`
	Log      *LogSink      `yaml:"log"`
}

// Timeout returns the per-attempt timeout of the backend.
func (b Backend) Timeout() time.Duration {
	switch {
	case b.HTTP != nil:
		return b.HTTP.Timeout.D()
	case b.Exec != nil:
		return b.Exec.Timeout.D()
	case b.Go != nil:
		return b.Go.Timeout.D()
	}
	return 0
}

// Tenant returns the tenant with that name, or nil.
func (c *Config) Tenant(name string) *Tenant {
	for i := range c.Tenants {
		if c.Tenants[i].Name == name {
			return &c.Tenants[i]
		}
	}
	return nil
}

// Function returns the tenant's function with that name, or nil.
func (c *Config) Function(tenant, name string) *Function {
	for i := range c.Functions {
		if f := &c.Functions[i]; f.Tenant == tenant && f.Name == name {
			return f
		}
	}
	return nil
}
