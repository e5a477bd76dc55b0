package redisstore

import (
	"context"
	"errors"
)

// triggersPaused is the hash of the paused triggers: field = trigger name,
// value "1"; a trigger without a field runs.
func (k keys) triggersPaused() string { return k.global("triggers:paused") }

// errNoTriggerName: a trigger state without a trigger name.
var errNoTriggerName = errors.New("redis store: trigger state: empty trigger name")

// PausedTriggers returns the triggers stored as paused (each true): the
// state every node of the service reads (HGETALL {P}:triggers:paused).
func (q *Queue) PausedTriggers(ctx context.Context) (map[string]bool, error) {
	if err := q.begin("paused triggers"); err != nil {
		return nil, err
	}
	fields, err := q.rdb.HGetAll(ctx, q.keys.triggersPaused()).Result()
	if err != nil {
		return nil, unavailable("paused triggers", err)
	}
	out := make(map[string]bool, len(fields))
	for name := range fields {
		out[name] = true
	}
	return out, nil
}

// SetTriggerPaused records that the trigger name is paused (true: HSET) or
// running (false: HDEL) for every node.
func (q *Queue) SetTriggerPaused(ctx context.Context, name string, paused bool) error {
	if name == "" {
		return errNoTriggerName
	}
	if err := q.begin("set trigger state"); err != nil {
		return err
	}
	var err error
	if paused {
		err = q.rdb.HSet(ctx, q.keys.triggersPaused(), name, "1").Err()
	} else {
		err = q.rdb.HDel(ctx, q.keys.triggersPaused(), name).Err()
	}
	if err != nil {
		return unavailable("set trigger state", err)
	}
	return nil
}
