package api

import (
	"errors"
	"time"
)

// Push is a push to a git repository, reported by a webhook. It is only a
// hint: the loop fetches the repository itself and deploys what the
// branch names then, so a forged or stale push can cause a fetch, never
// a commit the repository does not hold.
type Push struct {
	// Delivery is the webhook's delivery id (for logs and events).
	Delivery string
	// Repos are the ways the webhook names the repository (clone URL, SSH
	// URL, …); they are matched with RepoKey.
	Repos []string
	// Ref is the full ref pushed: refs/heads/<branch> or refs/tags/<tag>.
	Ref string
	// After is the commit the ref points to now ("" or all zeros: deleted).
	After string
	// Received is when the webhook arrived.
	Received time.Time
}

// PushOutcome says what a push set in motion.
type PushOutcome struct {
	// Triggered and Ignored name objects ("Kind/name") tracking the
	// repository: those re-resolved now, and those tracking another ref.
	Triggered, Ignored []string
}

// ErrPushQueueFull means pushes arrive faster than the control loop
// handles them; the webhook sender should retry later.
var ErrPushQueueFull = errors.New("the push queue is full")
