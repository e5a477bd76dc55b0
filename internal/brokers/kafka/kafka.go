// Package kafka holds what Ferry's Kafka trigger source (poller/kafka) and
// destination (sinks/kafka) share: the checks of broker addresses and
// topic names. Neither direction imports the other.
package kafka

import (
	"errors"
	"fmt"
	"strings"
)

// MaxTopicLen is Kafka's longest topic name.
const MaxTopicLen = 249

// CheckBrokers checks a bootstrap address list: at least one address,
// each "host:port". It returns one error per problem, each naming its
// field ("brokers", "brokers[1]").
func CheckBrokers(brokers []string) []error {
	var errs []error
	if len(brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one broker is required"))
	}
	for i, b := range brokers {
		if err := checkAddr(b); err != nil {
			errs = append(errs, fmt.Errorf("brokers[%d]: %w", i, err))
		}
	}
	return errs
}

// checkAddr accepts "host:port" with a non-empty host and a numeric port.
func checkAddr(a string) error {
	if strings.TrimSpace(a) == "" {
		return errors.New("empty address")
	}
	i := strings.LastIndexByte(a, ':')
	if i <= 0 || i == len(a)-1 || strings.ContainsAny(a, " \t/") {
		return fmt.Errorf("%q is not host:port", a)
	}
	for _, c := range a[i+1:] {
		if c < '0' || c > '9' {
			return fmt.Errorf("%q is not host:port", a)
		}
	}
	return nil
}

// CheckTopic applies Kafka's topic name rules: 1 to 249 characters of
// [a-zA-Z0-9._-], and neither "." nor "..".
func CheckTopic(t string) error {
	switch {
	case t == "":
		return errors.New("empty topic name")
	case len(t) > MaxTopicLen:
		return fmt.Errorf("longer than %d characters", MaxTopicLen)
	case t == "." || t == "..":
		return errors.New(`"." and ".." are not topic names`)
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("character %q not allowed (only a-z, A-Z, 0-9, '.', '_', '-')", c)
		}
	}
	return nil
}
