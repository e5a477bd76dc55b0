// Package conformance is the delivery contract of Ferry's triggers, written
// once and run against every real broker (as Watermill's pubsub tests and
// Benthos' integration stream tests do). A broker takes part by
// implementing brokers.Broker in its own test-support package
// (test/brokers/kafkatest, ...).
package conformance

import "github.com/ferrydev/ferry/test/brokers"

// Msg is a message the suite produces.
type Msg = brokers.Msg

// Broker is one real broker under test (see brokers.Broker).
type Broker = brokers.Broker

// Topic is one topic / queue / stream of a Broker (see brokers.Topic).
type Topic = brokers.Topic

// BulkTopic is a Topic that also produces large volumes fast, for the
// poller benchmarks (see brokers.BulkTopic).
type BulkTopic = brokers.BulkTopic
