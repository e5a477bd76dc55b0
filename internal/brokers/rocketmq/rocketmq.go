// Package rocketmq holds what Ferry's RocketMQ trigger source
// (poller/rocketmq) and destination (sinks/rocketmq) share: routing the
// client library's process-wide logging (SetClientLogger), RocketMQ's name
// rules (CheckName) and client instance names (InstanceName). Neither
// direction imports the other.
package rocketmq

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
)

// Longest names RocketMQ accepts.
const (
	MaxTopicLen = 127
	MaxGroupLen = 255
)

// nameRE is what RocketMQ accepts for topic and group names.
var nameRE = regexp.MustCompile(`^[%|a-zA-Z0-9_-]+$`)

// CheckName returns an error unless name is 1 to maxLen characters of
// [%|a-zA-Z0-9_-], as RocketMQ requires of topic and group names. The
// error quotes name (never a secret) and says the rule.
func CheckName(name string, maxLen int) error {
	if name == "" || len(name) > maxLen || !nameRE.MatchString(name) {
		return fmt.Errorf("%q must be 1-%d characters of [%%|a-zA-Z0-9_-]", name, maxLen)
	}
	return nil
}

// InstanceName is a client instance name unique in this process,
// "prefix-PID-RANDOM". Each consumer and producer takes one of its own:
// clients sharing an instance share its group registry, and a second
// member of one group would fail to start.
func InstanceName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), hex.EncodeToString(b))
}
