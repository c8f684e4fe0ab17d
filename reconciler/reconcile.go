package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"bakery.dev/bakery/api"
)

// Request names the object to reconcile. It carries identity only.
type Request struct {
	Kind string
	Name string
}

// String returns "Kind/name", the queue key.
func (r Request) String() string { return r.Kind + "/" + r.Name }

// ParseRequest is the inverse of Request.String.
func ParseRequest(key string) (Request, error) {
	k, n, ok := strings.Cut(key, "/")
	if !ok || k == "" || n == "" {
		return Request{}, fmt.Errorf("bad key %q", key)
	}
	return Request{Kind: k, Name: n}, nil
}

// Result tells the controller what to do after a successful Reconcile.
//
//   - A non-nil error: the key is retried after an exponential backoff with
//     jitter (per key; reset by the next success), unless the error is
//     terminal (see Terminal): then it is not retried until something
//     enqueues the key again.
//   - No error and RequeueAfter > 0: the backoff is forgotten and the key is
//     reconciled again after RequeueAfter.
//   - No error and RequeueAfter == 0: the backoff is forgotten and the key is
//     reconciled again at the controller's resync period.
//
// A panic in Reconcile is recovered and treated as an error.
type Result struct {
	RequeueAfter time.Duration
}

// Reconciler brings one object's world in line with its spec.
type Reconciler interface {
	Reconcile(ctx context.Context, req Request) (Result, error)
}

// Func adapts a function to Reconciler.
type Func func(ctx context.Context, req Request) (Result, error)

// Reconcile implements Reconciler.
func (f Func) Reconcile(ctx context.Context, req Request) (Result, error) { return f(ctx, req) }

var _ Reconciler = Func(nil)

// Condition reasons more than one reconciler gives (each reconciler's
// package names the reasons only it gives).
const (
	// ReasonInvalidSpec: the spec cannot be acted on; the object is
	// Stalled until its spec changes (the reconcile error is Terminal).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonSuspended: spec.suspend is set; the reconciler changes nothing.
	ReasonSuspended = "Suspended"
	// ReasonSourceUnavailable: the git source could not be fetched or the
	// ref resolved.
	ReasonSourceUnavailable = "SourceUnavailable"
)

type terminalError struct{ err error }

func (e terminalError) Error() string { return e.err.Error() }
func (e terminalError) Unwrap() error { return e.err }

// Terminal marks err as one that retrying cannot fix (an invalid spec, a
// host key mismatch): the controller does not retry it.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err}
}

// IsTerminal reports whether err was marked with Terminal.
func IsTerminal(err error) bool {
	var t terminalError
	return errors.As(err, &t)
}

// Superseder is implemented by a Reconciler whose objects carry, besides
// their spec (metadata.generation), requests that make a reconcile in
// flight obsolete (a deployment's rollback pin or restart request). The
// controller cancels the running reconcile of an object when what
// Supersedes returns for it changes, as it does for a new generation.
// Reconcilers that do not implement it are superseded by a new
// generation only.
type Superseder interface {
	// Supersedes returns a value that changes exactly when o carries a
	// new request that supersedes a reconcile in flight ("" for none).
	Supersedes(o api.Object) string
}
