package ui

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium driven over the DevTools protocol, with
// every console error and uncaught exception of its pages collected.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

// chromiumPath finds Debian's chromium (test/tools/up.sh installs it).
// Under CI=true a missing browser fails the test; elsewhere it skips.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: run test/tools/up.sh (make test does)")
	}
	t.Skip("chromium is not installed: run test/tools/up.sh (make test does)")
	return ""
}

// newBrowser starts headless Chromium for the test; it is closed at the
// end of the test.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1440, 1100),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	// The first Run starts the browser; Console then follows its tab.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.record(m.String() + " " + m.URL)
			}
		}
	}()
	t.Cleanup(func() { cancel(); cancelAlloc(); <-done })
	return b
}

func (b *browser) record(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, msg)
}

// consoleErrors returns the errors the pages reported so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// run runs actions with a deadline, failing the test on error.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, failing the test on error.
func get[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// text returns the text of the first node sel matches, or "" when none
// does (it does not wait for one).
func (b *browser) text(sel string) string {
	b.t.Helper()
	return get(b, "text of "+sel, chromedp.Evaluate[string](`(() => { const e = document.querySelector(`+strconv.Quote(sel)+`);
		return e ? e.innerText.trim() : ""; })()`))
}

// count returns how many nodes sel matches now.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return get(b, "count "+sel, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
}

// html returns the page's HTML now.
func (b *browser) html() string {
	b.t.Helper()
	return get(b, "page html", chromedp.OuterHTML(chromedp.CSS("html")))
}

// waitText polls until the text of sel satisfies ok, failing after
// timeout with the last text seen.
func (b *browser) waitText(timeout time.Duration, sel, want string, ok func(string) bool) string {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := b.text(sel)
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("after %s, %s shows %q; want %s", timeout, sel, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signIn opens the dashboard at url and enters key.
func (b *browser) signIn(url, key string) {
	b.t.Helper()
	b.run("open "+url,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#key-input")),
		chromedp.SendKeys(chromedp.CSS("#key-input"), key),
		chromedp.Click(chromedp.CSS("#key-submit")),
		chromedp.WaitVisible(chromedp.CSS("#functions tbody tr")),
	)
}

// screenshot saves a PNG of the whole page to path.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	png := get(b, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// location returns the page's URL.
func (b *browser) location() string {
	b.t.Helper()
	return get(b, "location", chromedp.Location())
}

// click clicks the first node sel matches, once it is visible.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.run("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// selectOption picks value in the <select> sel as a user would: the page
// sees a change event.
func (b *browser) selectOption(sel, value string) {
	b.t.Helper()
	get(b, "select "+value+" in "+sel, chromedp.Evaluate[bool](`(() => { const s = document.querySelector(`+strconv.Quote(sel)+`);
		s.value = `+strconv.Quote(value)+`; s.dispatchEvent(new Event("change")); return true; })()`))
}
