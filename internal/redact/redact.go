// Package redact keeps broker credentials out of error texts and logs:
// broker URLs carry user names and passwords ("amqp://user:pass@host/"),
// and the parsers and clients that take them quote them in their errors.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// Mask replaces a credential in a text.
const Mask = "xxxxx"

// URL returns rawURL with what lies between "://" and the last "@" (the
// user and password) replaced by Mask. It works on URLs that do not parse;
// text without userinfo is returned as it is.
func URL(rawURL string) string {
	i := strings.Index(rawURL, "://")
	j := strings.LastIndexByte(rawURL, '@')
	if i < 0 || j < i+3 {
		return rawURL
	}
	return rawURL[:i+3] + Mask + rawURL[j:]
}

// ParseURL parses rawURL with parse (a broker client's URL parser, such as
// amqp.ParseURI or redis.ParseURL) and returns its result. A parse error
// comes back without the credentials: a *url.Error (which quotes the whole
// URL) is replaced by one quoting URL(rawURL), and any other occurrence of
// rawURL or its userinfo in the error's text is masked. errors.Is and
// errors.As still reach the parse's cause.
func ParseURL[T any](rawURL string, parse func(string) (T, error)) (T, error) {
	v, err := parse(rawURL)
	if err == nil {
		return v, nil
	}
	var zero T
	var uerr *url.Error
	if errors.As(err, &uerr) {
		masked := &url.Error{Op: uerr.Op, URL: URL(uerr.URL), Err: uerr.Err}
		if err.Error() == uerr.Error() {
			err = masked
		} else {
			err = &redactedError{msg: strings.ReplaceAll(err.Error(), uerr.Error(), masked.Error()), err: masked}
		}
	}
	r := Redactor{URL: rawURL}
	if i, at := strings.Index(rawURL, "://"), strings.LastIndexByte(rawURL, '@'); i >= 0 && i+3 < at {
		r.Password = rawURL[i+3 : at] // the whole userinfo: a text may quote it
	}
	return zero, r.Error(err)
}

// Redactor removes a broker URL and its password from error texts, for
// the errors of a connection made with a URL that parsed.
type Redactor struct {
	// URL is replaced by "<url>" wherever it appears.
	URL string
	// Password is replaced by Mask wherever it appears, also
	// query-escaped.
	Password string
}

// Text returns msg without r's URL and password.
func (r Redactor) Text(msg string) string {
	if r.URL != "" {
		msg = strings.ReplaceAll(msg, r.URL, "<url>")
	}
	if r.Password != "" {
		msg = strings.ReplaceAll(msg, r.Password, Mask)
		if esc := url.QueryEscape(r.Password); esc != r.Password {
			msg = strings.ReplaceAll(msg, esc, Mask)
		}
	}
	return msg
}

// Error returns err with a text free of r's URL and password (err itself
// when its text has none), still reaching err with errors.Is and
// errors.As. A nil err stays nil.
func (r Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := r.Text(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError hides credentials in the text of an error while keeping
// what it wraps reachable with errors.Is / errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Endpoint returns rawURL as it may be shown in an error kept with a task:
// without its user and password, and with its query and fragment (where
// webhook and function URLs carry tokens) replaced by Mask.
func Endpoint(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		s, _, _ := strings.Cut(URL(rawURL), "?")
		s, _, _ = strings.Cut(s, "#")
		return s
	}
	if u.User != nil {
		u.User = url.User(Mask)
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = Mask, false
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = Mask, ""
	}
	return u.String()
}

// HTTPError returns the error a net/http client returned (a *url.Error,
// which quotes the whole URL) with that URL shown as Endpoint shows it;
// its cause is kept for errors.Is and errors.As. Call it before wrapping:
// a wrapped error's text is already made. Other errors are returned as
// they are.
func HTTPError(err error) error {
	if uerr, ok := err.(*url.Error); ok {
		return &url.Error{Op: uerr.Op, URL: Endpoint(uerr.URL), Err: uerr.Err}
	}
	return err
}
