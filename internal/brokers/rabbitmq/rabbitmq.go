// Package rabbitmq holds what Ferry's RabbitMQ trigger source
// (poller/rabbitmq) and destination (sinks/rabbitmq) share: parsing the
// AMQP URL into a credential-free address and a redactor for the
// connection's errors. Neither direction imports the other.
package rabbitmq

import (
	"net"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/internal/redact"
)

// URL is a parsed AMQP URL.
type URL struct {
	// URI is the parsed URL, credentials included: give it to the client,
	// never to an error or a log.
	URI amqp.URI
	// Addr is host:port of the broker, without credentials.
	Addr string
	// Redactor removes the URL and its password from the texts of the
	// connection's errors.
	Redactor redact.Redactor
}

// ParseURL parses an AMQP URI ("amqp://user:pass@host:5672/vhost"). Its
// error reads "not an AMQP URI: ..." and never holds the credentials.
func ParseURL(raw string) (URL, error) {
	uri, err := redact.ParseURL(raw, amqp.ParseURI)
	if err != nil {
		return URL{}, &parseError{err}
	}
	return URL{
		URI:      uri,
		Addr:     net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port)),
		Redactor: redact.Redactor{URL: raw, Password: uri.Password},
	}, nil
}

// parseError is a URL that is not an AMQP URI.
type parseError struct{ err error }

func (e *parseError) Error() string { return "not an AMQP URI: " + e.err.Error() }
func (e *parseError) Unwrap() error { return e.err }
