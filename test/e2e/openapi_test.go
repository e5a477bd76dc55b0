package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/apispec"
)

// The suite's API clients send every request through a transport that
// checks it, and its response, against docs/openapi.yaml (test/apispec),
// so that the document describes what Ferry really does. A mismatch fails
// the test that owns the client; one found after its test ended (a
// function resubmitting late) fails the run from TestMain.
var (
	spec     *apispec.Spec
	lateMu   sync.Mutex
	lateErrs []string
)

// loadSpec loads docs/openapi.yaml for TestMain.
func loadSpec() error {
	s, err := apispec.Load(filepath.Join(repoRoot, "docs", "openapi.yaml"))
	if err != nil {
		return err
	}
	spec = s
	return nil
}

// reportLate records a mismatch no running test can take.
func reportLate(_ *http.Request, err error) {
	lateMu.Lock()
	defer lateMu.Unlock()
	lateErrs = append(lateErrs, err.Error())
}

// specSummary is TestMain's account of the checks; ok is false when any
// mismatch was left for it to report.
func specSummary() (summary string, ok bool) {
	checked, failed := spec.Checked()
	lateMu.Lock()
	defer lateMu.Unlock()
	summary = fmt.Sprintf("openapi: %d API exchanges checked against docs/openapi.yaml, %d did not match", checked, failed)
	if un := spec.Unexercised(); len(un) > 0 {
		summary += fmt.Sprintf("\nopenapi: %d documented answers not exercised: %s", len(un), strings.Join(un, ", "))
	}
	for _, e := range lateErrs {
		summary += "\n" + e
	}
	return summary, len(lateErrs) == 0
}

// checkedClient returns an API client whose exchanges are checked against
// the document; t fails on a mismatch while it runs.
func checkedClient(t *testing.T, timeout time.Duration) *http.Client {
	var (
		mu   sync.Mutex
		done bool
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		done = true
	})
	report := func(req *http.Request, err error) {
		mu.Lock()
		defer mu.Unlock()
		if done {
			reportLate(req, fmt.Errorf("%s (after %s ended)", err, t.Name()))
			return
		}
		t.Errorf("%v", err)
	}
	return &http.Client{Timeout: timeout, Transport: &apispec.Transport{Spec: spec, Report: report}}
}

// bad returns a client of the same process whose requests are malformed
// on purpose: their answers are checked against the document, not the
// requests themselves.
func (f *ferryProc) bad() *ferryProc {
	c := *f
	c.malformed = true
	return &c
}
