package store

import (
	"context"

	"bakery.dev/bakery/api"
)

// Rollouts keeps rollout records and their logs.
type Rollouts interface {
	// CreateRollout stores a new rollout (ID chosen by the caller;
	// ErrAlreadyExists if taken).
	CreateRollout(ctx context.Context, r *api.Rollout) error
	// UpdateRollout replaces a stored rollout (ErrNotFound if missing);
	// a nil Spec keeps the stored one (a record from ListRollouts has none).
	UpdateRollout(ctx context.Context, r *api.Rollout) error
	// GetRollout returns one rollout or ErrNotFound.
	GetRollout(ctx context.Context, id string) (*api.Rollout, error)
	// ListRollouts returns a deployment's rollouts, newest (highest
	// revision, then latest created) first; limit <= 0 means all. The
	// records come without their Spec (GetRollout has it), so that a
	// listing stays small.
	ListRollouts(ctx context.Context, deployment string, limit int) ([]*api.Rollout, error)
	// AppendLogs appends lines to a rollout's log. Seq values are set by
	// the caller and increase; lines are kept in Seq order.
	AppendLogs(ctx context.Context, id string, lines []api.LogLine) error
	// Logs returns up to limit lines with Seq > after, in order.
	Logs(ctx context.Context, id string, after int64, limit int) ([]api.LogLine, error)
	// DeleteRollout removes a rollout record and its log (ErrNotFound if
	// missing). Retention is the caller's policy: the store never deletes
	// rollouts on its own.
	DeleteRollout(ctx context.Context, id string) error
}
