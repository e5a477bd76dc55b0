package rabbitmq

import "errors"

// Errors of the RabbitMQ source, checked with errors.Is. Errors that mean
// "reconnect" also wrap poller.ErrNotConnected.
var (
	// ErrStaleDelivery is returned by a message's Ack when the channel the
	// message was delivered on is gone (connection lost, Connect called
	// again, or Source closed). Delivery tags are per channel, so the
	// settlement cannot be sent on a newer channel; the broker has
	// requeued the message and delivers it again (a duplicate, never a
	// loss).
	ErrStaleDelivery = errors.New("delivery belongs to a closed AMQP channel; the broker redelivers it")
	// ErrQueueNotFound is returned by Connect when the configured queue
	// does not exist and Config.QueueType is empty (Ferry then does not
	// declare it); Connect may be retried once the queue is declared.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrQueueType is returned by Connect when Config.QueueType is set and
	// the queue exists with another type or other arguments (the broker's
	// PRECONDITION_FAILED); Connect may be retried once it is fixed.
	ErrQueueType = errors.New("queue exists with another type")
	// ErrClosed is returned by Connect and Read after Close.
	ErrClosed = errors.New("rabbitmq source closed")
	// ErrAlreadySettled is returned by a message's Ack called a second
	// time; the second call sends nothing (acking a delivery tag twice
	// would make the broker close the channel).
	ErrAlreadySettled = errors.New("message already settled")
)
