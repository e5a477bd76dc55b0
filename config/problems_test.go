package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// base is a valid config on lines 1-7; cases append to it from line 8.
const base = `tenants:
  - name: demo
    api_keys: [k]
functions:
  - name: echo
    tenant: demo
    backend: { exec: { command: [cat] } }
`

func TestParseProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want string // a substring of the error, "FILE:LINE: message"
	}{
		{name: "MalformedYAML", src: "server: a\n listen: b\n", want: "x.yaml:2: mapping values are not allowed in this context"},
		{name: "UnclosedFlow", src: base + "server: { listen: x\n", want: "x.yaml:8: did not find expected ',' or '}'"},
		{name: "MultipleDocuments", src: base + "---\nserver: {}\n", want: "x.yaml:8: only one YAML document is allowed"},
		{name: "UnknownTopLevelKey", src: base + "servr: {}\n", want: "x.yaml:8: servr: unknown key (known: server, store, loop_guard, dispatcher, log, telemetry, tenants, functions, triggers)"},
		{name: "UnknownNestedKey", src: base + "server:\n  listn: 127.0.0.1:1\n", want: "x.yaml:9: server.listn: unknown key (known: listen, max_payload, shutdown_timeout, read_header_timeout, gc_heap_floor, admin_keys, max_connections, tls, metrics_listen)"},
		{name: "DuplicateKey", src: base + "server: {}\nserver: {}\n", want: "x.yaml:9: server: duplicate key (first defined at line 8)"},
		{name: "MissingTenant", src: base + "  - name: other\n    tenant: nope\n    backend: { exec: { command: [cat] } }\n", want: `x.yaml:9: functions[1].tenant: tenant "nope" is not defined`},
		{name: "BadDuration", src: base + "    retry: { max_interval: 5x }\n", want: `x.yaml:8: functions[0].retry.max_interval: "5x" is not a duration`},
		{name: "BadSize", src: base + "server: { max_payload: 12 parsecs }\n", want: `x.yaml:8: server.max_payload: "12 parsecs" is not a size`},
		{name: "NotAnInteger", src: base + "loop_guard: { max_hops: many }\n", want: `x.yaml:8: loop_guard.max_hops: "many" is not an integer`},
		{name: "NotANumber", src: base + "    retry: { multiplier: double }\n", want: `x.yaml:8: functions[0].retry.multiplier: "double" is not a number`},
		{name: "MappingForList", src: "tenants: { name: demo }\n", want: "x.yaml:1: tenants: expected a list, got a mapping"},
		{name: "ListForMapping", src: base + "dispatcher: [1]\n", want: "x.yaml:8: dispatcher: expected a mapping, got a list"},
		{name: "ListForString", src: base + "log: { level: [debug] }\n", want: "x.yaml:8: log.level: expected a string, got a list"},
		{name: "MissingEnvVar", src: "tenants:\n  - name: demo\n    api_keys: [\"${DEMO_API_KEY}\"]\n", want: "x.yaml:3: tenants[0].api_keys[0]: environment variable DEMO_API_KEY is not set"},
		{name: "SecretWithoutPrefix", src: base + "    destinations: { on_success: [ { webhook: { url: http://h/, secret: hunter2hunter2 } } ] }\n", want: `x.yaml:8: functions[0].destinations.on_success[0].webhook.secret: must start with "whsec_"`},
		{name: "SecretNotBase64", src: base + "    destinations: { on_success: [ { webhook: { url: http://h/, secret: whsec_hunter2! } } ] }\n", want: `x.yaml:8: functions[0].destinations.on_success[0].webhook.secret: the part after "whsec_" is not valid standard base64`},
		{name: "SecretTooShort", src: base + "    destinations: { on_success: [ { webhook: { url: http://h/, secret: whsec_c2hvcnQ= } } ] }\n", want: "x.yaml:8: functions[0].destinations.on_success[0].webhook.secret: the key is 5 bytes; at least 16 are required"},
		{name: "WebhookURL", src: base + "    destinations: { on_failure: [ { webhook: { url: /relative, secret: whsec_MDEyMzQ1Njc4OWFiY2RlZg== } } ] }\n", want: "x.yaml:8: functions[0].destinations.on_failure[0].webhook.url: must be an absolute http:// or https:// URL"},
		{name: "TwoSinks", src: base + "    destinations:\n      on_success:\n        - log: {}\n          webhook: { url: http://h/, secret: whsec_MDEyMzQ1Njc4OWFiY2RlZg== }\n", want: "x.yaml:10: functions[0].destinations.on_success[0]: set exactly one of webhook, kafka, rocketmq, rabbitmq, redis, log, not webhook and log"},
		{name: "NoSink", src: base + "    destinations: { on_success: [ {} ] }\n", want: "x.yaml:8: functions[0].destinations.on_success[0]: set one of webhook, kafka, rocketmq, rabbitmq, redis, log"},
		{name: "TwoBackends", src: "tenants: [ { name: demo, api_keys: [k] } ]\nfunctions:\n  - name: f\n    tenant: demo\n    backend:\n      http: { url: \"http://h/\" }\n      exec: { command: [cat] }\n", want: "x.yaml:5: functions[0].backend: set exactly one of http, exec, go, not http and exec"},
		{name: "NoBackend", src: "tenants: [ { name: demo, api_keys: [k] } ]\nfunctions:\n  - name: f\n    tenant: demo\n", want: "x.yaml:3: functions[0].backend: set one of http, exec, go"},
		{name: "HTTPBackendURL", src: "tenants: [ { name: demo, api_keys: [k] } ]\nfunctions:\n  - { name: f, tenant: demo, backend: { http: { url: \"ftp://h/\" } } }\n", want: "x.yaml:3: functions[0].backend.http.url: must be an absolute http:// or https:// URL"},
		{name: "EmptyCommand", src: "tenants: [ { name: demo, api_keys: [k] } ]\nfunctions:\n  - { name: f, tenant: demo, backend: { exec: { command: [] } } }\n", want: "x.yaml:3: functions[0].backend.exec.command: must name a program to run"},
		{name: "CommandNotFound", src: "tenants: [ { name: demo, api_keys: [k] } ]\nfunctions:\n  - name: f\n    tenant: demo\n    backend:\n      exec:\n        command:\n          - ferry-no-such-program\n", want: `x.yaml:8: functions[0].backend.exec.command[0]: command "ferry-no-such-program" not found in PATH`},
		{name: "CommandPathMissing", src: base + "  - { name: g, tenant: demo, backend: { exec: { command: [/nonexistent/run.sh] } } }\n", want: `x.yaml:8: functions[1].backend.exec.command[0]: command "/nonexistent/run.sh" does not exist`},
		{name: "CommandNotExecutable", src: base + "  - { name: g, tenant: demo, backend: { exec: { command: [/etc/passwd] } } }\n", want: `x.yaml:8: functions[1].backend.exec.command[0]: command "/etc/passwd" is not executable`},
		{name: "CommandIsDirectory", src: base + "  - { name: g, tenant: demo, backend: { exec: { command: [/etc] } } }\n", want: `x.yaml:8: functions[1].backend.exec.command[0]: command "/etc" is a directory`},
		{name: "CommandRelativeToDir", src: base + "  - { name: g, tenant: demo, backend: { exec: { command: [./passwd], dir: /etc } } }\n", want: `x.yaml:8: functions[1].backend.exec.command[0]: command "/etc/passwd" is not executable`},
		{name: "DirMissing", src: base + "  - name: g\n    tenant: demo\n    backend:\n      exec:\n        command: [cat]\n        dir: /nonexistent/work\n", want: `x.yaml:13: functions[1].backend.exec.dir: directory "/nonexistent/work" does not exist`},
		{name: "DirIsFile", src: base + "  - { name: g, tenant: demo, backend: { exec: { command: [cat], dir: /etc/passwd } } }\n", want: `x.yaml:8: functions[1].backend.exec.dir: "/etc/passwd" is not a directory`},
		{name: "UnknownUser", src: base + "  - name: g\n    tenant: demo\n    backend:\n      exec: { command: [cat], user: ferry-no-such-user }\n", want: `x.yaml:11: functions[1].backend.exec.user: user "ferry-no-such-user" does not exist`},
		{name: "BadGid", src: base + "  - { name: g, tenant: demo, backend: { exec: { command: [cat], user: \"65534:x\" } } }\n", want: `x.yaml:8: functions[1].backend.exec.user: user "65534:x": the gid "x" is not a number`},
		{name: "NoTenants", src: "", want: "x.yaml: tenants: at least one tenant is required"},
		{name: "BadTenantName", src: "tenants: [ { name: -demo, api_keys: [k] } ]\n", want: `x.yaml:1: tenants[0].name: "-demo" is not a valid name`},
		{name: "DuplicateFunction", src: base + "  - { name: echo, tenant: demo, backend: { go: {} } }\n", want: `x.yaml:8: functions[1].name: function "echo" is already defined for tenant "demo" at line 5`},
		{name: "DuplicateTenant", src: "tenants:\n  - { name: demo, api_keys: [a] }\n  - { name: demo, api_keys: [b] }\n", want: `x.yaml:3: tenants[1].name: tenant "demo" is already defined at line 2`},
		{name: "NoAPIKeys", src: "tenants:\n  - name: demo\n", want: "x.yaml:2: tenants[0].api_keys: at least one API key is required"},
		{name: "SharedAPIKey", src: base[:len("tenants:\n  - name: demo\n    api_keys: [k]\n")] + "  - { name: other, api_keys: [k] }\n", want: "x.yaml:4: tenants[1].api_keys[0]: this API key is already used by tenants[0].api_keys[0] (line 3)"},
		{name: "AdminKeyIsTenantKey", src: base + "server: { admin_keys: [k] }\n", want: "x.yaml:3: tenants[0].api_keys[0]: this API key is already used by server.admin_keys[0] (line 8)"},
		{name: "EmptyAdminKey", src: base + "server: { admin_keys: [\"\"] }\n", want: "x.yaml:8: server.admin_keys[0]: must not be empty"},
		{name: "RedisStoreNoServer", src: base + "store:\n  redis: { prefix: ferry }\n", want: "x.yaml:9: store.redis: set one of url, sentinel"},
		{name: "RedisStoreURLAndSentinel", src: base + "store:\n  redis:\n    url: redis://127.0.0.1:6379/0\n    sentinel: { master: m, addrs: [\"h:26379\"] }\n", want: "x.yaml:9: store.redis: set exactly one of url, sentinel, not url and sentinel"},
		{name: "RedisStoreScheme", src: base + "store:\n  redis: { url: \"http://hunter2@127.0.0.1:6379/0\" }\n", want: "x.yaml:9: store.redis.url: must be a URL with a host and the scheme redis://"},
		{name: "RedisStoreNoHost", src: base + "store:\n  redis:\n    url: redis:///0\n", want: "x.yaml:10: store.redis.url: must be a URL with a host and the scheme redis://"},
		{name: "RedisStorePrefixColon", src: base + "store:\n  redis:\n    url: redis://127.0.0.1:6379/0\n    prefix: \"ferry:prod\"\n", want: `x.yaml:11: store.redis.prefix: "ferry:prod" is not a valid prefix (1 to 64 letters, digits, '.', '_' or '-'; no braces, colons or spaces)`},
		{name: "RedisStorePrefixBrace", src: base + "store:\n  redis: { url: \"redis://h:6379\", prefix: \"{ferry}\" }\n", want: `x.yaml:9: store.redis.prefix: "{ferry}" is not a valid prefix`},
		{name: "RedisStorePrefixSpace", src: base + "store:\n  redis: { url: \"redis://h:6379\", prefix: \"my ferry\" }\n", want: `x.yaml:9: store.redis.prefix: "my ferry" is not a valid prefix`},
		{name: "RedisStorePrefixTooLong", src: base + "store:\n  redis: { url: \"redis://h:6379\", prefix: " + strings.Repeat("p", 65) + " }\n", want: `x.yaml:9: store.redis.prefix: "` + strings.Repeat("p", 65) + `" is not a valid prefix`},
		{name: "RedisSentinelNoMaster", src: base + "store:\n  redis:\n    sentinel:\n      addrs: [\"h:26379\"]\n", want: "x.yaml:10: store.redis.sentinel.master: is required"},
		{name: "RedisSentinelNoAddrs", src: base + "store:\n  redis:\n    sentinel:\n      master: mymaster\n", want: "x.yaml:10: store.redis.sentinel.addrs: at least one sentinel address (host:port) is required"},
		{name: "RedisSentinelBadAddr", src: base + "store:\n  redis:\n    sentinel:\n      master: mymaster\n      addrs:\n        - h:26379\n        - sentinel-2\n", want: `x.yaml:14: store.redis.sentinel.addrs[1]: "sentinel-2" is not host:port`},
		{name: "RedisSentinelBadPort", src: base + "store:\n  redis:\n    sentinel: { master: m, addrs: [\"h:0\"] }\n", want: `x.yaml:10: store.redis.sentinel.addrs[0]: "h:0" has no valid port (1 to 65535)`},
		{name: "MinFree", src: base + "store: { embedded: { min_free: lots } }\n", want: `x.yaml:8: store.embedded.min_free: "lots" is neither a size`},
		{name: "MinFreePercent", src: base + "store: { embedded: { min_free: 120% } }\n", want: `x.yaml:8: store.embedded.min_free: "120%" is not a percentage`},
		{name: "WALRecovery", src: base + "store: { embedded: { wal_recovery: lax } }\n", want: `x.yaml:8: store.embedded.wal_recovery: "lax" is not a mode`},
		{name: "TwoStores", src: base + "store: { embedded: {}, redis: {} }\n", want: "x.yaml:8: store: set exactly one of embedded, redis"},
		{name: "Listen", src: base + "server: { listen: localhost }\n", want: `x.yaml:8: server.listen: "localhost" is not host:port`},
		{name: "MaxConnections", src: base + "server: { max_connections: -1 }\n", want: "x.yaml:8: server.max_connections: must be at least 0 (0: the default), got -1"},
		{name: "MetricsListen", src: base + "server:\n  metrics_listen: metrics\n", want: `x.yaml:9: server.metrics_listen: "metrics" is not host:port`},
		{name: "MetricsListenIsListen", src: base + "server:\n  listen: 127.0.0.1:8080\n  metrics_listen: 127.0.0.1:8080\n", want: "x.yaml:10: server.metrics_listen: must differ from server.listen"},
		{name: "TLSMissingFile", src: base + "server:\n  tls:\n    cert_file: /nonexistent/ferry.crt\n    key_file: /nonexistent/ferry.key\n", want: "x.yaml:10: server.tls.cert_file: /nonexistent/ferry.crt does not exist"},
		{name: "TLSMissingKey", src: base + "server:\n  tls:\n    cert_file: /nonexistent/ferry.crt\n", want: "x.yaml:9: server.tls.key_file: is required"},
		{name: "TLSNotAPair", src: base + "server:\n  tls: { cert_file: /dev/null, key_file: /dev/null }\n", want: "x.yaml:9: server.tls: cannot load the certificate and key"},
		{name: "MaxHops", src: base + "loop_guard: { max_hops: -1 }\n", want: "x.yaml:8: loop_guard.max_hops: must be at least 1, got -1"},
		{name: "Workers", src: base + "dispatcher: { workers: -4 }\n", want: "x.yaml:8: dispatcher.workers: must be at least 1, got -4"},
		{name: "LogLevel", src: base + "log: { level: verbose }\n", want: `x.yaml:8: log.level: "verbose" is not one of debug, info, warn, error`},
		{name: "LogFormat", src: base + "log: { format: xml }\n", want: `x.yaml:8: log.format: "xml" is not one of json, text`},
		{name: "TracesEndpoint", src: base + "telemetry:\n  traces: { endpoint: \"127.0.0.1:4318\" }\n", want: "x.yaml:9: telemetry.traces.endpoint: must be an absolute http:// or https:// URL, e.g. http://127.0.0.1:4318"},
		{name: "TracesProtocol", src: base + "telemetry:\n  traces:\n    protocol: http/json\n", want: `x.yaml:10: telemetry.traces.protocol: "http/json" is not one of http/protobuf, grpc`},
		{name: "TracesSampleRatio", src: base + "telemetry: { traces: { sample_ratio: 1.5 } }\n", want: "x.yaml:8: telemetry.traces.sample_ratio: must be from 0 to 1, got 1.5"},
		{name: "TracesHeaderName", src: base + "telemetry:\n  traces:\n    headers:\n      \"bad key\": secret\n", want: `x.yaml:11: telemetry.traces.headers.bad key: "bad key" is not a valid header name`},
		{name: "RetryIntervals", src: base + "    retry:\n      initial_interval: 10m\n", want: "x.yaml:9: functions[0].retry.initial_interval: 10m0s is longer than max_interval 5m0s"},
		{name: "RetryMultiplier", src: base + "    retry: { multiplier: 0.5 }\n", want: "x.yaml:8: functions[0].retry.multiplier: must be at least 1, got 0.5"},
		{name: "RetryAttempts", src: base + "    retry: { max_attempts: -1 }\n", want: "x.yaml:8: functions[0].retry.max_attempts: must be at least 1, got -1"},
		{name: "FunctionConcurrency", src: base + "    max_concurrency: -2\n", want: "x.yaml:8: functions[0].max_concurrency: must be at least 1, got -2"},
		{name: "TimerCron", src: base + "triggers:\n  - name: tick\n    function: echo\n    source: { timer: { cron: \"61 * * * *\" } }\n", want: `x.yaml:11: triggers[0].source.timer.cron: "61 * * * *" is not a cron expression`},
		{name: "TimerZone", src: base + "triggers:\n  - name: tick\n    function: echo\n    source:\n      timer:\n        cron: \"@hourly\"\n        timezone: Mars/Olympus\n", want: `x.yaml:14: triggers[0].source.timer.timezone: "Mars/Olympus" is not a known time zone`},
		{name: "TimerCatchUp", src: base + "triggers:\n  - name: tick\n    function: echo\n    source: { timer: { cron: \"@daily\" } }\n    catch_up: sometimes\n", want: `x.yaml:12: triggers[0].catch_up: "sometimes" is not one of none, last, all`},
		{name: "TimerMaxLatenessNegative", src: base + "triggers:\n  - name: tick\n    function: echo\n    source: { timer: { cron: \"@daily\" } }\n    max_lateness: -5m\n", want: `x.yaml:12: triggers[0].max_lateness: "-5m" is negative`},
		{name: "TenantQueue", src: "tenants:\n  - name: demo\n    api_keys: [k]\n    max_queued: -1\n", want: "x.yaml:4: tenants[0].max_queued: must be at least 1, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("x.yaml", []byte(tt.src), lookup(tt.env))
			if err == nil {
				t.Fatalf("Parse = %+v, nil; want an error containing %q", c, tt.want)
			}
			if c != nil {
				t.Errorf("Parse returned a config with its error")
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error %T is not Problems: %v", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error echoes the secret:\n%v", err)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	// Three independent problems on lines 6, 8 and 10.
	src := strings.Replace(base, "    tenant: demo\n", "    tenant: ghost\n", 1) +
		"servr: {}\n" +
		"loop_guard:\n" +
		"  max_hops: lots\n"
	_, err := Parse("x.yaml", []byte(src), nil)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse error = %v, want Problems", err)
	}
	want := []string{
		`x.yaml:6: functions[0].tenant: tenant "ghost" is not defined`,
		"x.yaml:8: servr: unknown key (known: server, store, loop_guard, dispatcher, log, telemetry, tenants, functions, triggers)",
		`x.yaml:10: loop_guard.max_hops: "lots" is not an integer`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("error:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestProblemsError(t *testing.T) {
	t.Parallel()
	ps := Problems{
		{File: "f.yaml", Line: 9, Message: "c"},
		{File: "f.yaml", Line: 2, Message: "b"},
		{File: "f.yaml", Message: "a"},
		{File: "f.yaml", Line: 2, Message: "b2"},
	}
	want := "f.yaml: a\nf.yaml:2: b\nf.yaml:2: b2\nf.yaml:9: c"
	if got := ps.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if ps[0].Message != "c" {
		t.Errorf("Error() reordered its receiver")
	}
}

func TestValidateWithoutLines(t *testing.T) {
	t.Parallel()
	c := &Config{File: "code", Tenants: []Tenant{{Name: "t", APIKeys: []string{"k"}}}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	c.Functions = []Function{{Name: "f", Tenant: "t"}}
	c.ApplyDefaults()
	if got, want := fmt.Sprint(c.Validate()), "code: functions[0].backend: set one of http, exec, go"; got != want {
		t.Errorf("Validate = %q, want %q", got, want)
	}
}

func ExampleParse() {
	src := []byte(`tenants:
  - name: demo
    api_keys: ["${DEMO_API_KEY}"]
functions:
  - name: echo
    tenant: demo
    backend: { exec: { command: [cat], timeout: 10x } }
`)
	_, err := Parse("ferry.yaml", src, nil)
	fmt.Println(err)
	// Output:
	// ferry.yaml:3: tenants[0].api_keys[0]: environment variable DEMO_API_KEY is not set
	// ferry.yaml:7: functions[0].backend.exec.timeout: "10x" is not a duration (use e.g. 500ms, 30s, 5m, 6h)
}
