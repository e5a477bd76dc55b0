package redact_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/internal/redact"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://user:secret@host:6379/0", "redis://xxxxx@host:6379/0"},
		{"redis://:p@ss@host/0", "redis://xxxxx@host/0"},
		{"redis://host:6379/0", "redis://host:6379/0"},
		{"not a url", "not a url"},
	}
	for _, tt := range tests {
		if got := redact.URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://hooks.example/h?token=abc", "https://hooks.example/h?xxxxx"},
		{"https://user:pw@hooks.example/h", "https://xxxxx@hooks.example/h"},
		{"http://h/p#frag", "http://h/p#xxxxx"},
		{"http://h:9000/", "http://h:9000/"},
		{"http://bad host/?token=abc", "http://bad host/"},
	}
	for _, tt := range tests {
		if got := redact.Endpoint(tt.in); got != tt.want {
			t.Errorf("Endpoint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	cause := errors.New("refused")
	err := redact.HTTPError(&url.Error{Op: "Post", URL: "https://h/x?token=abc", Err: cause})
	if got := err.Error(); strings.Contains(got, "abc") || !errors.Is(err, cause) {
		t.Errorf("HTTPError = %q (cause kept: %v), want no token and the cause", got, errors.Is(err, cause))
	}
}

// TestParseURL: whatever the parser's error looks like, its text carries
// no credential, and its cause stays reachable.
func TestParseURL(t *testing.T) {
	errCause := errors.New("cause")
	tests := []struct {
		name, raw string
		parse     func(string) (int, error)
		want      string // in the error text
	}{
		{"URLError", "amqp://guest:s3cret@host:port/", func(s string) (int, error) {
			_, err := url.Parse(s)
			return 0, err
		}, `parse "amqp://xxxxx@host:port/": invalid port`},
		{"WrappedURLError", "redis://u:s3cret@h:x/0", func(s string) (int, error) {
			_, err := url.Parse(s)
			return 0, fmt.Errorf("redis: %w", err)
		}, `redis: parse "redis://xxxxx@h:x/0": invalid port`},
		{"QuotesTheURL", "amqp://guest:s3cret@h/", func(s string) (int, error) {
			return 0, fmt.Errorf("bad URI %q: %w", s, errCause)
		}, `bad URI "<url>": cause`},
		{"QuotesTheUserinfo", "amqp://guest:s3cret@h/", func(string) (int, error) {
			return 0, fmt.Errorf("user guest:s3cret refused: %w", errCause)
		}, "user xxxxx refused: cause"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redact.ParseURL(tt.raw, tt.parse)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want %q in it and no password", err, tt.want)
			}
			var uerr *url.Error
			if errors.As(err, &uerr) && strings.Contains(uerr.URL, "s3cret") {
				t.Errorf("errors.As reaches a *url.Error with the password: %q", uerr.URL)
			}
		})
	}
	if v, err := redact.ParseURL("x", func(string) (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Errorf("ParseURL of a good URL = %d, %v; want 7, nil", v, err)
	}
	_, err := redact.ParseURL("amqp://a:b@h/", func(string) (int, error) { return 0, fmt.Errorf("x: %w", errCause) })
	if !errors.Is(err, errCause) {
		t.Errorf("errors.Is(%v, cause) = false", err)
	}
}

func TestRedactor(t *testing.T) {
	r := redact.Redactor{URL: "amqp://u:p%40ss@h/", Password: "p@ss"}
	err := r.Error(fmt.Errorf("dial amqp://u:p%%40ss@h/: password p@ss: %w", errors.ErrUnsupported))
	if got, want := err.Error(), "dial <url>: password xxxxx: unsupported operation"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Error("the cause is not reachable")
	}
	if plain := errors.New("plain"); r.Error(plain) != plain || r.Error(nil) != nil {
		t.Error("an error without credentials is not returned as it is")
	}
}
