package auth

import (
	"sync"
	"time"
)

// Limiter counts failed attempts per key (an account or an address) in a
// fixed window that starts with the first failure. It is safe for
// concurrent use.
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	hits map[string]*window
}

type window struct {
	start time.Time
	n     int
}

// maxKeys bounds the keys kept: beyond it, ended windows are dropped.
const maxKeys = 100000

// NewLimiter returns a Limiter that blocks a key after max failures within
// d, until d has passed since its first failure; now is the clock.
func NewLimiter(max int, d time.Duration, now func() time.Time) *Limiter {
	return &Limiter{max: max, window: d, now: now, hits: map[string]*window{}}
}

// Blocked returns how long the most limited of keys stays blocked (0: not
// blocked).
func (l *Limiter) Blocked(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range keys {
		w := l.hits[k]
		if w == nil {
			continue
		}
		end := w.start.Add(l.window)
		if !now.Before(end) {
			delete(l.hits, k)
			continue
		}
		if w.n >= l.max && end.Sub(now) > wait {
			wait = end.Sub(now)
		}
	}
	return wait
}

// Fail counts a failed attempt for every key.
func (l *Limiter) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.hits) > maxKeys { // bound memory under a flood of names
		for k, w := range l.hits {
			if !now.Before(w.start.Add(l.window)) {
				delete(l.hits, k)
			}
		}
	}
	for _, k := range keys {
		w := l.hits[k]
		if w == nil || !now.Before(w.start.Add(l.window)) {
			w = &window{start: now}
			l.hits[k] = w
		}
		w.n++
	}
}

// Reset forgets the failures of key.
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.hits, key)
}
