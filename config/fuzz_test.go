package config

import (
	"errors"
	"os"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, name := range []string{"examples/quickstart.yaml", "examples/full.yaml", "examples/cluster.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base + "servr: {}\nserver: { max_payload: 1x }\n"))
	f.Add([]byte("a: &a { b: 1 }\nserver:\n  <<: *a\n  listen: ${X}\n"))
	env := lookup(map[string]string{"DEMO_API_KEY": "k", "X": "127.0.0.1:1"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data, env)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v; want exactly one of a config and an error", c, err)
		}
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error %T is not Problems: %v", err, err)
			}
			for _, p := range ps {
				if p.File != "f.yaml" || p.Line < 0 || p.Message == "" {
					t.Fatalf("bad problem %+v", p)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
	})
}
