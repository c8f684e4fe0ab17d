package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api/store"
)

// NewAttempts returns two handles on one new, empty store.Attempts — for
// a shared database, two stores opened on it (two servers); for an
// in-process counter, the same one twice.
type NewAttempts func(t *testing.T) (store.Attempts, store.Attempts)

// RunAttempts runs the conformance suite for store.Attempts: counts per
// key in a window that starts with the first attempt; all keys counted or
// none; a key at its maximum refused with the time left; ReturnAttempt
// and ResetAttempts; invalid keys are ErrInvalid; and of 60 concurrent
// takers of one key, spread over both handles, exactly max get through.
func RunAttempts(t *testing.T, newAttempts NewAttempts) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t.Run("Window", func(t *testing.T) {
		a, b := newAttempts(t)
		take := func(at store.Attempts, now time.Time, keys ...string) time.Duration {
			t.Helper()
			w, err := at.TakeAttempt(t.Context(), keys, 2, time.Minute, now)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		if take(a, t0, "k") != 0 || take(b, t0.Add(time.Second), "k") != 0 {
			t.Fatal("the first two attempts are refused")
		}
		if w := take(a, t0.Add(20*time.Second), "k"); w != 40*time.Second {
			t.Fatalf("third attempt: wait %v, want 40s (the window's rest)", w)
		}
		// All or none: "other" is not counted when "k" is refused.
		if w := take(b, t0.Add(20*time.Second), "other", "k"); w != 40*time.Second {
			t.Fatalf("two keys, one at its maximum: wait %v", w)
		}
		for i := range 2 {
			if take(a, t0.Add(21*time.Second), "other") != 0 {
				t.Fatalf("attempt %d of 2 on the other key refused: the refused take counted it", i+1)
			}
		}
		// Returned: one more.
		if err := b.ReturnAttempt(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		if take(a, t0.Add(30*time.Second), "k") != 0 || take(a, t0.Add(30*time.Second), "k") == 0 {
			t.Fatal("ReturnAttempt did not give back exactly one attempt")
		}
		// The window ends a minute after its first attempt.
		if take(b, t0.Add(time.Minute), "k") != 0 {
			t.Fatal("refused after the window")
		}
		if take(b, t0.Add(time.Minute+time.Second), "k") != 0 || take(b, t0.Add(time.Minute+2*time.Second), "k") == 0 {
			t.Fatal("a new window does not count from one")
		}
		if err := a.ResetAttempts(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		if take(b, t0.Add(time.Minute+3*time.Second), "k") != 0 {
			t.Fatal("refused after ResetAttempts")
		}
		if err := a.ReturnAttempt(t.Context(), "never-seen"); err != nil {
			t.Fatalf("returning an attempt never taken: %v", err)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		a, _ := newAttempts(t)
		for _, keys := range [][]string{{""}, {string(make([]byte, store.MaxAttemptKeyLen+1))}} {
			if _, err := a.TakeAttempt(t.Context(), keys, 1, time.Minute, t0); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("key of %d bytes: %v, want ErrInvalid", len(keys[0]), err)
			}
		}
		if _, err := a.TakeAttempt(t.Context(), []string{"k"}, 0, time.Minute, t0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("max 0: %v, want ErrInvalid", err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		a, b := newAttempts(t)
		const takers, max = 60, 5
		var mu sync.Mutex
		let := 0
		var wg sync.WaitGroup
		for i := range takers {
			at := a
			if i%2 == 1 {
				at = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, err := at.TakeAttempt(t.Context(), []string{"addr:10.0.0.1", "user:alice"}, max, time.Minute, t0)
				if err != nil {
					t.Error(err)
					return
				}
				if w == 0 {
					mu.Lock()
					let++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if let != max {
			t.Fatalf("%d of %d concurrent attempts let through, want %d", let, takers, max)
		}
	})
}
