// Package e2e runs the ferry binary, built once with the race detector,
// against recording HTTP backends and webhook receivers in the test
// process, and checks the pinned contracts of shared/design.md end to end.
// Process management and the webhook receiver are test/ferrytest's.
package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/apispec"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// repoRoot is the module root.
var repoRoot = func() string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return root
}()

func TestMain(m *testing.M) {
	if err := loadSpec(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	ferrytest.StartTransport = &apispec.Transport{Spec: spec, Report: reportLate}
	code := m.Run()
	ferrytest.Cleanup()
	summary, ok := specSummary()
	fmt.Println(summary)
	if !ok && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// ferryProc is one `ferry serve` process (and its restarts) with the API
// client of the helpers in client_test.go, which checks every exchange
// against docs/openapi.yaml (openapi_test.go).
type ferryProc struct {
	*ferrytest.Proc
	key       string // default API key of the client helpers
	malformed bool   // the requests are bad on purpose (see bad)
	client    *http.Client
}

// startFerry runs `ferry serve` on cfgYAML, a whole config in which
// {{listen}} stands for a free loopback address and {{data}} for a data
// directory (see ferrytest.StartConfig), and waits until it is ready.
func startFerry(t *testing.T, cfgYAML string) *ferryProc {
	t.Helper()
	f := &ferryProc{Proc: ferrytest.StartConfig(t, cfgYAML), client: checkedClient(t, 10*time.Second)}
	t.Cleanup(f.client.CloseIdleConnections)
	return f
}
