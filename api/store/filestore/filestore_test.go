package filestore

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/storetest"
)

// open opens a store in dir for a test and closes it at the end.
func open(t testing.TB, dir string, opts ...Option) *Store {
	t.Helper()
	opts = append([]Option{WithLogger(testLogger(t)), WithDebounce(20 * time.Millisecond)}, opts...)
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testLogger(t testing.TB) *slog.Logger {
	if tt, ok := t.(*testing.T); ok && testing.Verbose() {
		return slog.New(slog.NewTextHandler(tt.Output(), nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}

func BenchmarkApply1000(b *testing.B) {
	s := open(b, b.TempDir())
	storetest.BenchmarkApply(b, s, 1000)
}

func TestRolloutConformance(t *testing.T) {
	storetest.RunRollouts(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}

func TestSettingsConformance(t *testing.T) {
	storetest.RunSettings(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}

func TestAccountsConformance(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) })
}
