// Package eventstest is a Recorder over a real file store for tests, and
// what it recorded.
package eventstest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/notify"
)

// Log is an events.Recorder over a real file store, and what it
// recorded: read back from the store when it keeps events (store.Events),
// else as sent.
type Log struct {
	St  *filestore.Store
	Rec *events.Recorder
	mu  sync.Mutex
	got []*api.Event
}

// New returns a Log whose recorder also notifies n (nil: none).
func New(t *testing.T, n *notify.Notifier) *Log {
	t.Helper()
	st, err := filestore.Open(t.TempDir(), filestore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	l := &Log{St: st}
	l.Rec = events.NewRecorder(st, n, slog.New(slog.DiscardHandler))
	l.Rec.Sent = func(e *api.Event) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.got = append(l.got, e)
	}
	return l
}

// Events returns "Type Object" of every event recorded, oldest first.
func (l *Log) Events(t *testing.T) []string {
	t.Helper()
	var evs []*api.Event
	if es, ok := any(l.St).(store.Events); ok {
		list, err := es.ListEvents(t.Context(), "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(list) - 1; i >= 0; i-- { // newest first
			evs = append(evs, list[i])
		}
	} else {
		l.mu.Lock()
		evs = append(evs, l.got...)
		l.mu.Unlock()
	}
	var out []string
	for _, e := range evs {
		if e.ID == "" || e.Time == nil {
			t.Errorf("event without ID or time: %+v", e)
		}
		out = append(out, e.Type+" "+e.Object)
	}
	return out
}

// Last returns the event recorded last.
func (l *Log) Last() *api.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got[len(l.got)-1]
}

// Expect fails t unless the events recorded are want ("Type Object").
func Expect(t *testing.T, l *Log, want ...string) {
	t.Helper()
	got := l.Events(t)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
