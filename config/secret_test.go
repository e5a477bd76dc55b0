package config

import (
	"strings"
	"testing"
)

// TestProblemsHideSecrets: a problem about a secret-bearing key names the
// key and its line but never echoes the value (issue 15: api_keys and
// headers errors echoed it).
func TestProblemsHideSecrets(t *testing.T) {
	t.Parallel()
	const secret = "hunter2"
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"APIKeysScalar", "tenants:\n  - name: demo\n    api_keys: \"hunter2\"\n", "x.yaml:3: tenants[0].api_keys: expected a list, got a string (not shown"},
		{"APIKeysMapping", "tenants:\n  - name: demo\n    api_keys: { hunter2: x }\n", "x.yaml:3: tenants[0].api_keys: expected a list, got a mapping"},
		{"AdminKeysScalar", base + "server: { admin_keys: hunter2 }\n", "x.yaml:8: server.admin_keys: expected a list, got a string (not shown"},
		{"HTTPHeadersScalar", base + "  - { name: h, tenant: demo, backend: { http: { url: \"http://h/\", headers: \"Authorization: Bearer hunter2\" } } }\n", "x.yaml:8: functions[1].backend.http.headers: expected a mapping, got a string (not shown"},
		{"HTTPHeaderList", base + "  - { name: h, tenant: demo, backend: { http: { url: \"http://h/\", headers: { Authorization: [hunter2] } } } }\n", "x.yaml:8: functions[1].backend.http.headers.Authorization: expected a string, got a list"},
		{"TelemetryHeadersScalar", base + "telemetry: { traces: { headers: \"x-api-key=hunter2\" } }\n", "x.yaml:8: telemetry.traces.headers: expected a mapping, got a string (not shown"},
		{"TriggerFilterHeaders", base + "triggers:\n  - { name: t, function: echo, source: { kafka: { brokers: [\"h:1\"], topic: t, group: g } }, filter: { headers: hunter2 } }\n", "x.yaml:9: triggers[0].filter.headers: expected a mapping, got a string (not shown"},
		{"ExecEnvScalar", base + "  - { name: e, tenant: demo, backend: { exec: { command: [cat], env: \"TOKEN=hunter2\" } } }\n", "x.yaml:8: functions[1].backend.exec.env: expected a mapping, got a string (not shown"},
		{"WebhookSecret", base + "    destinations: { on_success: [ { webhook: { url: http://h/, secret: hunter2 } } ] }\n", "x.yaml:8: functions[0].destinations.on_success[0].webhook.secret: must start with"},
		{"WebhookSecretList", base + "    destinations: { on_success: [ { webhook: { url: http://h/, secret: [hunter2] } } ] }\n", "x.yaml:8: functions[0].destinations.on_success[0].webhook.secret: expected a string, got a list"},
		{"WebhookURLPassword", base + "    destinations: { on_success: [ { webhook: { url: \"ftp://u:hunter2@h/\", secret: whsec_MDEyMzQ1Njc4OWFiY2RlZg== } } ] }\n", "x.yaml:8: functions[0].destinations.on_success[0].webhook.url: must be an absolute"},
		{"RedisStoreURLPassword", base + "store: { redis: { url: \"http://u:hunter2@h:6379/0\" } }\n", "x.yaml:8: store.redis.url: must be a URL"},
		{"RedisSentinelPassword", base + "store: { redis: { sentinel: { master: m, addrs: [\"h:1\"], password: [hunter2] } } }\n", "x.yaml:8: store.redis.sentinel.password: expected a string, got a list"},
		{"RabbitMQURLPassword", base + "triggers:\n  - { name: t, function: echo, source: { rabbitmq: { url: \"http://guest:hunter2@h:5672/\", queue: q } } }\n", "x.yaml:9: triggers[0].source.rabbitmq.url: must be a URL"},
		{"RedisTriggerURLPassword", base + "triggers:\n  - { name: t, function: echo, source: { redis: { url: \"amqp://u:hunter2@h/\", stream: s } } }\n", "x.yaml:9: triggers[0].source.redis.url: must be a URL"},
		{"RedisSinkURLPassword", base + "    destinations: { on_failure: [ { redis: { url: \"amqp://u:hunter2@h/\", stream: s } } ] }\n", "x.yaml:8: functions[0].destinations.on_failure[0].redis.url: must be a URL"},
		{"RabbitMQSinkURLPassword", base + "    destinations: { on_failure: [ { rabbitmq: { url: \"redis://u:hunter2@h/\", exchange: x } } ] }\n", "x.yaml:8: functions[0].destinations.on_failure[0].rabbitmq.url: must be a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("x.yaml", []byte(tt.src), nil)
			if err == nil {
				t.Fatalf("Parse: nil error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error echoes the secret:\n%v", err)
			}
		})
	}
}

func TestSecretPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path   string
		secret bool
	}{
		{"tenants[0].api_keys", true},
		{"tenants[0].api_keys[2]", true},
		{"server.admin_keys[0]", true},
		{"functions[0].backend.http.headers", true},
		{"functions[0].backend.http.headers.Authorization", true},
		{"telemetry.traces.headers.x-api-key", true},
		{"functions[0].backend.exec.env.DB", true},
		{"functions[0].destinations.on_success[0].webhook.secret", true},
		{"functions[0].destinations.on_success[0].webhook.url", true},
		{"store.redis.url", true},
		{"store.redis.sentinel.password", true},
		{"store.redis.sentinel.username", true},
		{"triggers[0].source.rabbitmq.url", true},
		{"triggers[0].source.kafka.sasl.mechanism", true},
		{"triggers[0].source.kafka.sasl_password", true},
		{"x.signing_key", true},
		{"x.access_token", true},
		{"x.client_secret", true},
		{"x.db_dsn", true},
		{"x.dsn", true},
		{"log.level", false},
		{"server.listen", false},
		{"functions[0].name", false},
		{"functions[0].backend.exec.command[0]", false},
		{"triggers[0].source.kafka.topic", false},
		{"loop_guard.max_hops", false},
	}
	for _, tt := range tests {
		if got := secretPath(tt.path); got != tt.secret {
			t.Errorf("secretPath(%q) = %v, want %v", tt.path, got, tt.secret)
		}
	}
}
