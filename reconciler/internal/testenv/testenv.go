// Package testenv holds what the control loop's tests share: a throwaway
// file store and a bounded poll. Only tests import it; it is not a place
// for fakes of real parts.
package testenv

import (
	"testing"
	"time"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
)

// FileStore opens a file store in a temporary directory, closed when the
// test ends.
func FileStore(t testing.TB) store.Store {
	t.Helper()
	s, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Eventually polls cond every 10ms for at most 10s and fails the test,
// naming what it waited for, if cond never holds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
