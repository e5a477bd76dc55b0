package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// triggerKey keys the paused state of a trigger: "1" while it is paused,
// no key while it runs.
func triggerKey(name string) []byte {
	return append([]byte{prefixTrigger}, name...)
}

// errNoTriggerName: a trigger state without a trigger name.
var errNoTriggerName = errors.New("embedded: trigger state: empty trigger name")

// PausedTriggers returns the triggers stored as paused (each true): the
// state SetTriggerPaused keeps beside the tasks, which survives restarts.
func (q *Queue) PausedTriggers(context.Context) (map[string]bool, error) {
	if err := q.begin("paused triggers"); err != nil {
		return nil, err
	}
	defer q.end()
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTrigger}, UpperBound: []byte{prefixTrigger + 1}})
	if err != nil {
		return nil, fmt.Errorf("embedded: paused triggers: %w", err)
	}
	out := map[string]bool{}
	for ok := it.First(); ok; ok = it.Next() {
		out[string(it.Key()[1:])] = true
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("embedded: paused triggers: %w", err)
	}
	return out, nil
}

// SetTriggerPaused records that the trigger name is paused (true) or
// running (false), fsynced before it returns. It writes even below the
// free-space reserve: the record is a few bytes, and pausing a trigger is
// one way to stop what fills the disk.
func (q *Queue) SetTriggerPaused(_ context.Context, name string, paused bool) error {
	if name == "" {
		return errNoTriggerName
	}
	if err := q.begin("set trigger state"); err != nil {
		return err
	}
	defer q.end()
	b := q.db.NewBatch()
	defer b.Close()
	var err error
	if paused {
		err = b.Set(triggerKey(name), []byte("1"), nil)
	} else {
		err = b.Delete(triggerKey(name), nil)
	}
	if err != nil {
		return fmt.Errorf("embedded: set trigger state: %w", err)
	}
	return q.commit(b, pebble.Sync, "set trigger state")
}
