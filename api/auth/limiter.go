package auth

import (
	"context"
	"sync"
	"time"

	"bakery.dev/bakery/api/store"
)

// Limiter is the in-process store.Attempts: attempts counted per key (an
// account or an address) in a fixed window that starts with the first
// attempt. Auth uses it when the store keeps no attempts (the file store:
// one server). It is safe for concurrent use.
type Limiter struct {
	mu   sync.Mutex
	hits map[string]*window
}

var _ store.Attempts = (*Limiter)(nil)

type window struct {
	end time.Time
	n   int
}

// maxKeys bounds the keys kept: beyond it, ended windows are dropped.
const maxKeys = 100000

// NewLimiter returns an empty Limiter.
func NewLimiter() *Limiter { return &Limiter{hits: map[string]*window{}} }

// TakeAttempt implements store.Attempts.
func (l *Limiter) TakeAttempt(_ context.Context, keys []string, max int, d time.Duration, now time.Time) (time.Duration, error) {
	if err := store.CheckAttemptKeys(keys, max, d); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) > maxKeys { // bound memory under a flood of names
		for k, w := range l.hits {
			if !now.Before(w.end) {
				delete(l.hits, k)
			}
		}
	}
	var wait time.Duration
	for _, k := range keys {
		if w := l.hits[k]; w != nil && now.Before(w.end) && w.n >= max && w.end.Sub(now) > wait {
			wait = w.end.Sub(now)
		}
	}
	if wait > 0 {
		return wait, nil
	}
	for _, k := range keys {
		w := l.hits[k]
		if w == nil || !now.Before(w.end) {
			w = &window{end: now.Add(d)}
			l.hits[k] = w
		}
		w.n++
	}
	return 0, nil
}

// ReturnAttempt implements store.Attempts.
func (l *Limiter) ReturnAttempt(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.hits[key]; w != nil && w.n > 0 {
		w.n--
	}
	return nil
}

// ResetAttempts implements store.Attempts.
func (l *Limiter) ResetAttempts(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.hits, key)
	return nil
}
