package events

import (
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/internal/testenv"
)

// An event repeating its object's previous one is stored once per
// RepeatInterval, the next one carrying the count; another event, or
// another object's, is stored at once.
func TestRepeatedEventsCounted(t *testing.T) {
	st := testenv.FileStore(t)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	r := NewRecorder(st, nil, nil)
	r.RepeatInterval, r.Now = 5*time.Minute, func() time.Time { return now }
	var sent []*api.Event
	r.Sent = func(e *api.Event) { sent = append(sent, e) }
	ev := func(obj, msg string) *api.Event {
		return &api.Event{Type: api.EventCertificateRenewalFailed, Severity: api.SeverityWarning, Object: obj, Message: msg}
	}
	r.Record(t.Context(), ev("Deployment/web", "renewal failed"))
	for range 4 {
		now = now.Add(time.Minute)
		r.Record(t.Context(), ev("Deployment/web", "renewal failed"))
	}
	r.Record(t.Context(), ev("Deployment/api", "renewal failed"))
	if len(sent) != 2 {
		t.Fatalf("within the interval: %d events sent, want 2 (web once, api)", len(sent))
	}
	now = now.Add(time.Minute)
	r.Record(t.Context(), ev("Deployment/web", "renewal failed"))
	if len(sent) != 3 || sent[2].Count != 5 {
		t.Fatalf("after the interval: %d sent, last count %d, want 3 and 5 (4 repeats counted and this one)", len(sent), sent[len(sent)-1].Count)
	}
	r.Record(t.Context(), ev("Deployment/web", "renewed"))
	r.Record(t.Context(), ev("Deployment/web", "renewal failed"))
	if len(sent) != 5 || sent[4].Count != 0 {
		t.Fatalf("a different event in between: %d sent, want 5, the last uncounted", len(sent))
	}
	evs, err := st.(store.Events).ListEvents(t.Context(), "Deployment/web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 || evs[2].Count != 5 {
		t.Fatalf("stored for web: %d events, want 4 (the third with count 5)", len(evs))
	}
}
