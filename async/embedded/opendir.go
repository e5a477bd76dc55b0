package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/async"
)

// pidFile names the process holding the directory (Pebble's LOCK file
// holds the lock itself), for the message a second process gets.
const pidFile = "FERRY.pid"

// ErrLocked is returned by Open for a data directory another process
// holds.
var ErrLocked = errors.New("the data directory is locked")

// ErrDamagedDir is returned by Open for a data directory whose files do not
// make a store Pebble can open without losing them.
var ErrDamagedDir = errors.New("damaged data directory")

// checkDir refuses a directory that holds store files (tables, MANIFEST,
// WAL) but no CURRENT naming an existing MANIFEST: Pebble would otherwise
// start a new, empty store over them, and the old tables would be deleted
// as obsolete. A new or empty directory passes.
func checkDir(path string) error {
	entries, err := os.ReadDir(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded: open %s: %w: %w", path, async.ErrUnavailable, err)
	}
	var stored []string
	current := false
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == "CURRENT":
			current = true
		case strings.HasSuffix(n, ".sst"), strings.HasPrefix(n, "MANIFEST-"), strings.HasSuffix(n, ".log"):
			stored = append(stored, n)
		}
	}
	if len(stored) == 0 {
		return nil
	}
	sort.Strings(stored)
	what := fmt.Sprintf("%d store files (%s)", len(stored), summarise(stored))
	if !current {
		return fmt.Errorf("embedded: open %s: %w: it holds %s but no CURRENT file; refusing to open it, which would start an empty store over them. "+
			"Restore CURRENT (one line naming the newest MANIFEST, e.g. MANIFEST-000005), or move the directory aside to start empty", path, ErrDamagedDir, what)
	}
	b, err := os.ReadFile(filepath.Join(path, "CURRENT"))
	if err != nil {
		return fmt.Errorf("embedded: open %s: %w: read CURRENT: %w", path, ErrDamagedDir, err)
	}
	manifest := strings.TrimSpace(string(b))
	st, err := os.Stat(filepath.Join(path, manifest))
	if !strings.HasPrefix(manifest, "MANIFEST-") || strings.ContainsRune(manifest, '/') || err != nil || st.Size() == 0 {
		return fmt.Errorf("embedded: open %s: %w: CURRENT names %q, which is not a non-empty MANIFEST file in the directory (it holds %s); "+
			"refusing to open it. Restore the MANIFEST, or point CURRENT at the newest valid one", path, ErrDamagedDir, manifest, what)
	}
	return nil
}

// summarise lists a few names.
func summarise(names []string) string {
	if len(names) <= 4 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:3], ", ") + fmt.Sprintf(", … %d more", len(names)-3)
}

// openPebble opens Pebble on path. A panic inside pebble.Open (it has
// panicked on damaged directories) becomes an error, and a directory
// locked by another process is named with that process's pid.
func openPebble(path string, opts Options) (db *pebble.DB, err error) {
	po := pebbleOptions(opts)
	defer po.Cache.Unref() // the DB holds its own reference
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("embedded: open %s: %w: pebble panicked while opening it: %v", path, ErrDamagedDir, r)
		}
	}()
	db, err = pebble.Open(path, po)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
		holder := "another process"
		if b, rerr := os.ReadFile(filepath.Join(path, pidFile)); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf("another Ferry process (pid %d)", pid)
			}
		}
		return nil, fmt.Errorf("embedded: open %s: %w: %s holds it; one directory serves one Ferry: "+
			"stop the other process, or give this one another store.embedded.path", path, ErrLocked, holder)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w: %w", path, async.ErrUnavailable, err)
	}
	// Best effort: only the message above reads it.
	_ = os.WriteFile(filepath.Join(path, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	return db, nil
}
