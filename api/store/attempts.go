package store

import (
	"context"
	"fmt"
	"time"
)

// MaxAttemptKeyLen is the longest key Attempts accepts.
const MaxAttemptKeyLen = 200

// Attempts counts attempts per key in fixed windows — failed logins per
// user name and per client address, webhook bodies already accepted —
// atomically: a PostgreSQL store counts across every server sharing the
// database. A store that keeps them implements this besides store.Store;
// storetest.RunAttempts is its conformance suite. A window starts with
// the first attempt counted for a key and lasts the window given with
// it; after it ends the key counts from zero again.
type Attempts interface {
	// TakeAttempt counts one attempt for every key, all or none: when a
	// key already holds max attempts in its current window, nothing is
	// counted and it returns how long until that key's window ends (the
	// longest, of several). Otherwise it returns 0. Of concurrent callers
	// (in any process sharing the store) at most max get 0 for one key in
	// one window.
	TakeAttempt(ctx context.Context, keys []string, max int, window time.Duration, now time.Time) (time.Duration, error)
	// ReturnAttempt takes back one attempt counted for key (an attempt
	// that turned out to be fine); nothing when none is counted.
	ReturnAttempt(ctx context.Context, key string) error
	// ResetAttempts forgets key.
	ResetAttempts(ctx context.Context, key string) error
}

// CheckAttemptKeys returns an ErrInvalid error unless every key is 1 to
// MaxAttemptKeyLen bytes and max and window are positive.
func CheckAttemptKeys(keys []string, max int, window time.Duration) error {
	if max <= 0 || window <= 0 {
		return fmt.Errorf("%w: attempts: max %d and window %s must be positive", ErrInvalid, max, window)
	}
	for _, k := range keys {
		if k == "" || len(k) > MaxAttemptKeyLen {
			return fmt.Errorf("%w: attempt key must be 1 to %d bytes", ErrInvalid, MaxAttemptKeyLen)
		}
	}
	return nil
}
