package chaos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

func TestMain(m *testing.M) {
	if _, err := ferrytest.Build(); err != nil {
		fmt.Fprintln(os.Stderr, "building ferry:", err)
		os.Exit(1)
	}
	code := m.Run()
	ferrytest.Cleanup()
	os.Exit(code)
}

// TestChaosSmoke runs one fast row of the matrix (backend 503 on every
// first attempt, a small N) so `make test` keeps the harness working.
func TestChaosSmoke(t *testing.T) {
	var tab Table
	for _, r := range asyncRows(0.02) {
		if strings.HasPrefix(r.fault, "backend 5xx") {
			r.run(t, &tab)
		}
	}
	rows := tab.Rows()
	if len(rows) != 1 || rows[0].Status != "ok" || rows[0].Retries < rows[0].N {
		t.Fatalf("smoke row: %+v (want ok, every seq retried once)", rows)
	}
}

// TestChaos runs every row (FERRY_CHAOS=1; `make chaos`), prints the table
// and, with FERRY_CHAOS_WRITE=1, writes it into docs/reliability.md
// between the markers.
func TestChaos(t *testing.T) {
	if os.Getenv("FERRY_CHAOS") != "1" {
		t.Skip("FERRY_CHAOS=1 runs the fault matrix (make chaos)")
	}
	start := time.Now()
	var tab Table
	for _, r := range asyncRows(1) {
		t.Run(r.fault, func(t *testing.T) { r.run(t, &tab) })
	}
	for _, target := range brokerTargets() {
		t.Run("restart "+target.label, func(t *testing.T) { rowBroker(t, &tab, target, false, 3000) })
		t.Run("kill9 "+target.label, func(t *testing.T) { rowBroker(t, &tab, target, true, 3000) })
	}
	for _, target := range partitionTargets(t) {
		for _, fault := range []string{"latency", "cut", "half-open"} {
			t.Run("partition "+target.label+" "+fault, func(t *testing.T) { rowPartition(t, &tab, target, fault, 10*time.Second, 3000) })
		}
	}
	for _, typ := range []string{"classic", "quorum"} {
		t.Run("raw kill9 rabbitmq "+typ, func(t *testing.T) { rowRawRabbit(t, &tab, typ, 3000) })
	}
	for _, r := range localRows {
		t.Run(r.name, func(t *testing.T) { r.run(t, &tab) })
	}
	for _, r := range notRun {
		tab.Add(r)
	}
	var buf bytes.Buffer
	tab.Write(&buf)
	fmt.Printf("\n%s\n(whole run %s)\n", buf.String(), time.Since(start).Round(time.Second))
	if os.Getenv("FERRY_CHAOS_WRITE") == "1" {
		if err := writeDoc(buf.String(), time.Since(start)); err != nil {
			t.Fatal(err)
		}
	}
}

const beginMark, endMark = "<!-- chaos table begin -->", "<!-- chaos table end -->"

// writeDoc replaces the table between the markers of docs/reliability.md
// (appending the markers when missing).
func writeDoc(table string, took time.Duration) error {
	path := filepath.Join("..", "..", "docs", "reliability.md")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := fmt.Sprintf("%s\nLast `make chaos`: %s, whole run %s.\n\n%s%s", beginMark,
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second), table, endMark)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(endMark):]
	} else {
		s += "\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
