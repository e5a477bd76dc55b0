package dispatcher

import (
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"
)

// CodeLocalResource is the code of an attempt that failed on a resource of
// Ferry's own process or host (file descriptors, memory, processes, local
// ports), not on the function: such an attempt is not spent. A task goes
// back to the queue, a trigger's message is tried again and an outcome
// delivery is retried, each after LocalBackoff, and
// ferry_local_resource_errors_total{kind} counts it.
const CodeLocalResource = "local_resource"

// LocalBackoff is the mean wait before an attempt that failed on a local
// resource is made again (jittered by ±50%): long enough for a flood of
// connections or a burst of processes to be shed, short enough that work
// resumes quickly once it has been.
const LocalBackoff = time.Second

// localBackoff returns LocalBackoff with jitter.
func localBackoff() time.Duration {
	return LocalBackoff/2 + rand.N(LocalBackoff)
}

// localErrnos are the errors of a local resource anywhere in an error's
// chain, with their kind label: they come from Ferry's own syscalls
// (socket, pipe2, fork, connect's local port), never from a remote
// function.
var localErrnos = []struct {
	errno syscall.Errno
	kind  string
}{
	{syscall.EMFILE, "emfile"},               // this process's open-file limit
	{syscall.ENFILE, "enfile"},               // the host's open-file table
	{syscall.ENOMEM, "enomem"},               // memory (fork, mmap, socket buffers)
	{syscall.ENOBUFS, "enobufs"},             // kernel buffers for sockets
	{syscall.EADDRNOTAVAIL, "eaddrnotavail"}, // no free local port to connect from
}

// LocalError is a failure of one of Ferry's own resources, which says
// nothing about the function. Backends return it (with Local) where only
// they can tell, e.g. EAGAIN from fork: the process limit. Classify also
// finds the errors of localErrnos in any chain by itself.
type LocalError struct {
	// Kind is the metric's label, e.g. "eagain".
	Kind string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *LocalError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *LocalError) Unwrap() error { return e.Err }

// Local marks err as a failure of a resource of Ferry's own process of the
// given kind (the label of ferry_local_resource_errors_total).
func Local(kind string, err error) error { return &LocalError{Kind: kind, Err: err} }

// LocalKind reports whether err is a failure of Ferry's own resources, and
// its kind: a *LocalError, one of the errnos in localErrnos anywhere in the
// chain, or a DNS lookup that failed on them. "" otherwise.
func LocalKind(err error) string {
	if err == nil {
		return ""
	}
	var le *LocalError
	if errors.As(err, &le) {
		return le.Kind
	}
	for _, e := range localErrnos {
		if errors.Is(err, e.errno) {
			return e.kind
		}
	}
	// The resolver keeps its cause as text only.
	var dns *net.DNSError
	if errors.As(err, &dns) {
		for _, e := range localErrnos {
			if strings.Contains(dns.Err, e.errno.Error()) {
				return e.kind
			}
		}
	}
	return ""
}
