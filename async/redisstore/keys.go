package redisstore

import "strings"

// FormatVersion is the layout version this package reads and writes,
// stored at {P}:version.
const FormatVersion = "1"

// keys names the keys of one prefix.
type keys struct{ prefix string }

func (k keys) global(name string) string { return "{" + k.prefix + "}:" + name }

// tenant is the hash-tagged prefix of a tenant's keys.
func (k keys) tenant(t string) string { return "{" + k.prefix + ":t:" + t + "}" }

func (k keys) version() string { return k.global("version") }
func (k keys) ready() string   { return k.global("ready") }
func (k keys) seq() string     { return k.global("seq") }
func (k keys) cursor() string  { return k.global("cursor") }
func (k keys) wake() string    { return k.global("wake") }

// Tenant keys the Go side names (the scripts build the rest from the
// tenant's hash tag, the first argument of every tenant script).
func (k keys) task(t, id string) string { return k.tenant(t) + ":k:" + id }
func (k keys) all(t string) string      { return k.tenant(t) + ":all" }
func (k keys) rate(t string) string     { return k.tenant(t) + ":rate" }

// listID returns the task id of a listing member.
func listID(member string) string {
	if i := strings.IndexByte(member, ':'); i >= 0 {
		return member[i+1:]
	}
	return member
}

// arate is the hash of a tenant's admission buckets (NewAdmissionRates),
// laid out as rate ("" → the tenant's TAT, <fn> → the lane's), apart from
// the dispatch buckets so that admitting a task does not spend the token
// its invocation takes: {P:t:T}:arate.
func (k keys) arate(t string) string { return k.tenant(t) + ":arate" }
