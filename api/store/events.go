package store

import (
	"context"

	"bakery.dev/bakery/api"
)

// MaxEventsPerObject is how many events a store keeps per object; older
// ones are dropped when new ones are added.
const MaxEventsPerObject = 200

// Events keeps the events the control plane records.
type Events interface {
	// AddEvent stores e (ID chosen by the caller, unique; ErrAlreadyExists
	// if taken). Beyond MaxEventsPerObject events for e.Object, the oldest
	// are dropped.
	AddEvent(ctx context.Context, e *api.Event) error
	// ListEvents returns events newest first (by Time, then ID), for one
	// object ("Kind/name") or, with object "", for all; limit <= 0 means
	// all.
	ListEvents(ctx context.Context, object string, limit int) ([]*api.Event, error)
}
