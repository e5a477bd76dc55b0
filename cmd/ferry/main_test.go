package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// syncBuffer is a bytes.Buffer safe to write from a command while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// invocation is one command line run in-process.
type invocation struct {
	args     []string
	stdin    string
	env      map[string]string
	terminal bool // stderr counts as a terminal
	ctx      context.Context
	stdout   *syncBuffer // optional: read while it runs
}

// result is what the command printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

func (inv invocation) run(t *testing.T) result {
	t.Helper()
	ctx := inv.ctx
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
	}
	stdout := inv.stdout
	if stdout == nil {
		stdout = &syncBuffer{}
	}
	var stderr syncBuffer
	e := env{
		stdin: strings.NewReader(inv.stdin), stdout: stdout, stderr: &stderr,
		getenv:     func(k string) string { return inv.env[k] },
		isTerminal: func(io.Writer) bool { return inv.terminal },
	}
	code := runCLI(ctx, e, inv.args)
	return result{stdout.String(), stderr.String(), code}
}

func ferryCmd(t *testing.T, args ...string) result {
	t.Helper()
	return invocation{args: args}.run(t)
}

func TestServerCommandsKeepTheirBehaviour(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good, "tenants: [ { name: a, api_keys: [k] } ]\nfunctions: [ { name: f, tenant: a, backend: { exec: { command: [cat] } } } ]\n")
	write(bad, "server:\n  listen: 127.0.0.1:0\n  shutdown_timeout: 5x\n")
	// The probe of issue 15: validate said ok and serve failed without
	// FILE:LINE for a command that does not exist; a missing dir failed
	// every run.
	noCmd := filepath.Join(dir, "nocmd.yaml")
	write(noCmd, "tenants: [ { name: a, api_keys: [k] } ]\nfunctions:\n  - name: f\n    tenant: a\n    backend: { exec: { command: [ferry-no-such-program], dir: "+filepath.Join(dir, "gone")+" } }\n")
	noCmdWant := []string{
		noCmd + `:5: functions[0].backend.exec.dir: directory "` + filepath.Join(dir, "gone") + `" does not exist`,
	}
	noCmd2 := filepath.Join(dir, "nocmd2.yaml")
	write(noCmd2, "tenants: [ { name: a, api_keys: [k] } ]\nfunctions:\n  - name: f\n    tenant: a\n    backend: { exec: { command: [ferry-no-such-program] } }\n")
	noCmd2Want := noCmd2 + `:5: functions[0].backend.exec.command[0]: command "ferry-no-such-program" not found in PATH`

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // exact, when not ""
		stderrHas  string
		stdoutHas  string
		stderrNone bool
	}{
		{"Version", []string{"version"}, 0, "ferry dev\n", "", "", true},
		{"ValidateOK", []string{"validate", "-c", good}, 0, good + ": ok\n", "", "", true},
		{"ValidateLongFlag", []string{"validate", "--config=" + good}, 0, good + ": ok\n", "", "", true},
		{"ValidateProblems", []string{"validate", "-c", bad}, 1, "", "", bad + ":3: ", true},
		{"ValidateMissingFile", []string{"validate", "-c", filepath.Join(dir, "none.yaml")}, 1, "", "", "none.yaml", true},
		{"ValidateExtraArgument", []string{"validate", "-c", good, "x"}, 2, "", `unexpected argument "x"`, "", false},
		{"ValidateUnknownFlag", []string{"validate", "-x"}, 2, "", "unknown shorthand flag", "", false},
		{"ServeProblems", []string{"serve", "-c", bad}, 1, "", bad + ":3: ", "", false},
		{"ValidateMissingDir", []string{"validate", "-c", noCmd}, 1, "", "", noCmdWant[0], true},
		{"ServeMissingDir", []string{"serve", "-c", noCmd}, 1, "", noCmdWant[0], "", false},
		{"ValidateMissingCommand", []string{"validate", "-c", noCmd2}, 1, "", "", noCmd2Want, true},
		{"ServeMissingCommand", []string{"serve", "-c", noCmd2}, 1, "", noCmd2Want, "", false},
		{"NoCommand", nil, 2, "", "Available Commands", "", false},
		{"UnknownCommand", []string{"launch"}, 2, "", `unknown command "launch"`, "", false},
		{"Help", []string{"--help"}, 0, "", "", "Exit codes", true},
		{"SubcommandHelp", []string{"validate", "--help"}, 0, "", "", "ferry validate -c ferry.yaml", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ferryCmd(t, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.stdout != "" && r.stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tc.stdout)
			}
			if !strings.Contains(r.stdout, tc.stdoutHas) {
				t.Errorf("stdout %q, want it to contain %q", r.stdout, tc.stdoutHas)
			}
			if !strings.Contains(r.stderr, tc.stderrHas) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.stderrHas)
			}
			if tc.stderrNone && r.stderr != "" {
				t.Errorf("stderr %q, want nothing", r.stderr)
			}
		})
	}
}

// TestServeRuns: serve with a good config serves until its context ends,
// then exits 0.
func TestServeRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.yaml")
	cfg := "log: { level: error }\nserver: { listen: 127.0.0.1:0 }\nstore: { embedded: { path: " + filepath.Join(t.TempDir(), "data") + " } }\n" +
		"tenants: [ { name: a, api_keys: [k] } ]\nfunctions: [ { name: f, tenant: a, backend: { exec: { command: [cat] } } } ]\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r := invocation{args: []string{"serve", "-c", path}, ctx: ctx}.run(t)
	if r.code != 0 {
		t.Fatalf("serve: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			r := ferryCmd(t, "completion", shell)
			if r.code != 0 || !strings.Contains(r.stdout, "ferry") || len(r.stdout) < 500 {
				t.Errorf("completion %s: exit %d, %d bytes of script, stderr %q", shell, r.code, len(r.stdout), r.stderr)
			}
		})
	}
	// Flag values complete too.
	r := ferryCmd(t, "__complete", "tasks", "list", "--status", "")
	if !strings.Contains(r.stdout, "failed") {
		t.Errorf("--status completions: %q", r.stdout)
	}
	r = ferryCmd(t, "__complete", "submit", "echo", "--output", "")
	if !strings.Contains(r.stdout, "json") {
		t.Errorf("--output completions: %q", r.stdout)
	}
}

// TestEveryCommandHasAnExample walks the command tree.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := newRoot(env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == cobra.ShellCompRequestCmd || c.Name() == cobra.ShellCompNoDescRequestCmd {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
