package store

import (
	"context"
	"errors"
	"time"
)

// ErrLockLost is the cause (context.Cause) of a held Lock's context ending
// because the lock was lost: the connection holding it broke.
var ErrLockLost = errors.New("store: lock lost (its database connection broke)")

// Claim asks for the exclusive right to reconcile one key ("Kind/name")
// across every control plane sharing a store (see Locker).
type Claim struct {
	Key string
	// DoneAfter: when a reconcile of Key that started after this time (on
	// the store's clock) has finished without error since, the claim is
	// not needed: TryLock answers Skip.
	DoneAfter time.Time
	// DoneWithin: likewise, for a reconcile that started less than this
	// long ago (a periodic resync another server just did).
	DoneWithin time.Duration
}

// Lock is TryLock's answer.
type Lock struct {
	// Held: this control plane holds the key until Release. Ctx ends when
	// the claim's context ends or the lock is lost (the connection that
	// held it broke): the work it guards must stop then.
	Held    bool
	Ctx     context.Context
	Release func(ok bool)
	// Skip: the key was free, but the work is already done (DoneAfter,
	// DoneWithin); nothing is held.
	Skip bool
	// BusyAt is, when neither Held nor Skip (another control plane holds
	// the key), the store's time of the attempt.
	BusyAt time.Time
}

// Locker makes reconciles exclusive across control planes. Release(ok)
// frees the key and, with ok, records the reconcile as finished (for
// later claims' DoneAfter and DoneWithin).
type Locker interface {
	TryLock(ctx context.Context, c Claim) (Lock, error)
}

// NopLocker is the Locker of a single control plane: every key is free
// (in-process exclusivity comes from the work queue).
type NopLocker struct{}

// TryLock implements Locker.
func (NopLocker) TryLock(ctx context.Context, _ Claim) (Lock, error) {
	return Lock{Held: true, Ctx: ctx, Release: func(bool) {}}, nil
}

// PortBook keeps, per node, the ports that rollouts in flight have chosen
// but not yet recorded in the node's state files, so that two apps rolled
// out on one node at once — by one control plane or by several — never
// pick the same port.
type PortBook interface {
	// BookPorts calls plan with the ports other apps have booked on node
	// and books the ports plan returns for app there, replacing app's
	// earlier bookings on node; atomically against every other BookPorts
	// of node. An error from plan books nothing.
	BookPorts(ctx context.Context, node, app string, plan func(taken map[int]bool) ([]int, error)) error
	// ForgetPorts drops every booking of app.
	ForgetPorts(ctx context.Context, app string) error
}
