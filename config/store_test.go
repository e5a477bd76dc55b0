package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseRedisStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, store string
		want        RedisStore
	}{
		{"URLDefaultPrefix", "store: { redis: { url: \"rediss://u:p@redis.example:6380/2\" } }\n",
			RedisStore{URL: "rediss://u:p@redis.example:6380/2", Prefix: DefaultRedisPrefix}},
		{"Prefix", "store: { redis: { url: \"redis://127.0.0.1:6379/0\", prefix: ferry-prod.eu_1 } }\n",
			RedisStore{URL: "redis://127.0.0.1:6379/0", Prefix: "ferry-prod.eu_1"}},
		{"Sentinel", "store:\n  redis:\n    sentinel: { master: mymaster, addrs: [\"s1:26379\", \"[::1]:26379\"], username: u, password: p }\n",
			RedisStore{Prefix: DefaultRedisPrefix, Sentinel: &RedisSentinel{Master: "mymaster", Addrs: []string{"s1:26379", "[::1]:26379"}, Username: "u", Password: "p"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("s.yaml", []byte(base+tt.store), nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.Store.Embedded != nil || c.Store.Redis == nil {
				t.Fatalf("store = %+v, want only redis", c.Store)
			}
			if got := *c.Store.Redis; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("store.redis = %+v (sentinel %+v), want %+v (sentinel %+v)", got, got.Sentinel, tt.want, tt.want.Sentinel)
			}
		})
	}
}

// TestExamplesValidate: every config in examples/ passes `ferry validate`
// (Load), with the variables the examples name set.
func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v, want at least quickstart, full and cluster", files, err)
	}
	env := lookup(map[string]string{"DEMO_API_KEY": "demo-secret"})
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(f, data, env)
			if err != nil {
				t.Fatalf("%s does not validate:\n%v", f, err)
			}
			if len(c.Warnings) > 0 {
				t.Errorf("%s has warnings:\n%v", f, c.Warnings)
			}
		})
	}
}
