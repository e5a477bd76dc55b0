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
	// does not exist. Ferry never declares users' queues; Connect may be
	// retried once the queue is declared.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrClosed is returned by Connect and Read after Close.
	ErrClosed = errors.New("rabbitmq source closed")
	// ErrAlreadySettled is returned by a message's Ack called a second
	// time; the second call sends nothing (acking a delivery tag twice
	// would make the broker close the channel).
	ErrAlreadySettled = errors.New("message already settled")
)
