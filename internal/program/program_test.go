package program

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("TestCredential needs root")
		}
		t.Skip("needs root")
	}
	tests := []struct {
		spec     string
		uid, gid uint32
		err      string
	}{
		{spec: "nobody", uid: 65534, gid: 65534},
		{spec: "65534", uid: 65534, gid: 65534},
		{spec: "65534:0", uid: 65534, gid: 0},
		{spec: "4242", uid: 4242, gid: 4242}, // a uid without an entry
		{spec: "root", uid: 0, gid: 0},
		{spec: "ferry-no-such-user", err: "does not exist"},
		{spec: "nobody:0", err: "use a name or uid[:gid]"},
		{spec: "1:x", err: "is not a number"},
	}
	for _, tt := range tests {
		c, err := Credential(tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Credential(%q) = %v, %v; want an error containing %q", tt.spec, c, err, tt.err)
			}
			continue
		}
		if err != nil || c.Uid != tt.uid || c.Gid != tt.gid {
			t.Errorf("Credential(%q) = %+v, %v; want uid %d gid %d", tt.spec, c, err, tt.uid, tt.gid)
		}
	}
	if c, err := Credential(""); c != nil || err != nil {
		t.Errorf(`Credential("") = %v, %v; want nil, nil`, c, err)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, want, err string
	}{
		{name: "sh", want: "/"},
		{name: script, want: script},
		{name: "./run.sh", dir: dir, want: "./run.sh"},
		{name: "./run.sh", dir: "/", err: "does not exist"},
		{name: dir, err: "is a directory"},
		{name: "ferry-no-such-program", err: "not found in PATH"},
		{name: "", err: "no program"},
	}
	for _, tt := range tests {
		got, err := Resolve(tt.name, tt.dir)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Resolve(%q, %q) = %q, %v; want an error containing %q", tt.name, tt.dir, got, err, tt.err)
			}
			continue
		}
		if err != nil || !strings.Contains(got, tt.want) {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q", tt.name, tt.dir, got, err, tt.want)
		}
	}
	if err := CheckDir(script); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("CheckDir(file) = %v", err)
	}
}
