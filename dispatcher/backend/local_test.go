package backend

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/ferrydev/ferry/dispatcher"
)

// exhaustEnv makes the test binary run TestOutOfFilesIsLocal's child part.
const exhaustEnv = "FERRY_TEST_EXHAUST_FDS"

// TestOutOfFilesIsLocal: with every file descriptor of the process in use
// (a real EMFILE, in a child process so other tests keep theirs), the
// exec backend fails at pipe2 and the HTTP backend at socket, and both
// errors are classified as Ferry's own (dispatcher.CodeLocalResource,
// kind emfile): the attempt is not spent. This is what the
// connection-flood probe saw fail tasks for good.
func TestOutOfFilesIsLocal(t *testing.T) {
	if os.Getenv(exhaustEnv) == "1" {
		exhaustAndInvoke(t)
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfFilesIsLocal$", "-test.v")
	cmd.Env = append(os.Environ(), exhaustEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// exhaustAndInvoke lowers the open-file limit, fills it, and invokes both
// backends.
func exhaustAndInvoke(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	h, err := NewHTTP(HTTPConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	e := newExec(t, ExecConfig{Command: []string{"cat"}})
	lim := syscall.Rlimit{Cur: 256, Max: 256}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var held []*os.File
	defer func() {
		for _, f := range held {
			_ = f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !strings.Contains(err.Error(), syscall.EMFILE.Error()) {
				t.Fatalf("filling the descriptors: %v", err)
			}
			break
		}
		held = append(held, f)
	}
	for name, invoke := range map[string]func() error{
		"exec": func() error { _, err := e.Invoke(context.Background(), testInvocation()); return err },
		"http": func() error { _, err := h.Invoke(context.Background(), testInvocation()); return err },
	} {
		err := invoke()
		c := dispatcher.Classify(err)
		fmt.Printf("%s: %v -> %+v\n", name, err, c)
		if c.Code != dispatcher.CodeLocalResource || c.Local != "emfile" || c.Permanent {
			t.Errorf("%s backend out of files: classified %+v, want %s, kind emfile", name, c, dispatcher.CodeLocalResource)
		}
	}
}
