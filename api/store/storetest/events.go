package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// RunEvents runs the conformance suite for store.Events. newStore must
// return a new, empty store that implements store.Events. Like
// RunRollouts it is not part of Run: a store that keeps events calls it
// from its own test:
//
//	func TestEventConformance(t *testing.T) { storetest.RunEvents(t, newStore) }
//
// Beyond what the store.Events comments say, the suite pins down these
// rules:
//
//   - AddEvent refuses (ErrInvalid, nothing stored) a nil event, an empty
//     ID, and an Object that is not "Kind/name" with a kind api.New knows
//     (exactly, not an alias) and a DNS-1123 label as name. ListEvents
//     refuses such an object too ("" means all objects).
//   - IDs are global: a taken ID is ErrAlreadyExists whichever object the
//     new event is about, and the stored event is unchanged. An ID whose
//     event was dropped (see below) is free again.
//   - Events are copies both ways. Time comes back in UTC, truncated to
//     seconds (what api.Time holds in JSON); a nil or zero Time comes back
//     nil and sorts as the oldest. The strings are kept as
//     store.ValidText returns them (never a reason to refuse an event).
//   - ListEvents orders by Time in whole seconds (latest first), then ID
//     (descending, byte-wise). An object without events has none (empty,
//     no error). limit <= 0 means all.
//   - After every AddEvent an object has at most store.MaxEventsPerObject
//     events: the newest in ListEvents' order are kept (so an event older
//     than all those of a full object is dropped at once). Other objects'
//     events are untouched.
//   - AddEvent may be called concurrently, for one object or several.
func RunEvents(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ev store.Events)
	}{
		{"RoundTrip", testEventRoundTrip},
		{"Order", testEventOrder},
		{"Limit", testEventLimit},
		{"Duplicate", testEventDuplicate},
		{"Invalid", testEventInvalid},
		{"Trim", testEventTrim},
		{"Text", testEventText},
		{"Concurrent", testEventConcurrent},
	}
	if !t.Run("ImplementsEvents", func(t *testing.T) {
		if s := newStore(t); !implementsEvents(s) {
			t.Fatalf("%T does not implement store.Events (AddEvent, ListEvents)", s)
		}
	}) {
		return
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, ok := newStore(t).(store.Events)
			if !ok {
				t.Fatal("store does not implement store.Events")
			}
			tc.fn(t, ev)
		})
	}
}

func implementsEvents(s store.Store) bool {
	_, ok := s.(store.Events)
	return ok
}

// Event returns an event for tests: id and object as given, at the given
// second of 2026-01-02 10:00 UTC, a warning of type UnitUnhealthy.
func Event(id, object string, sec int) *api.Event {
	return &api.Event{
		ID:       id,
		Time:     api.NewTime(time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)),
		Type:     api.EventUnitUnhealthy,
		Severity: api.SeverityWarning,
		Object:   object,
		Message:  fmt.Sprintf("event %s", id),
	}
}

func mustAddEvent(t *testing.T, ev store.Events, e *api.Event) {
	t.Helper()
	if err := ev.AddEvent(t.Context(), e); err != nil {
		t.Fatalf("add event %s: %v", e.ID, err)
	}
}

func mustListEvents(t *testing.T, ev store.Events, object string, limit int) []*api.Event {
	t.Helper()
	got, err := ev.ListEvents(t.Context(), object, limit)
	if err != nil {
		t.Fatalf("list events of %q (limit %d): %v", object, limit, err)
	}
	return got
}

func eventIDs(es []*api.Event) []string {
	ids := []string{}
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

func copyEvent(e *api.Event) *api.Event {
	c := *e
	if e.Time != nil {
		t := *e.Time
		c.Time = &t
	}
	return &c
}

func testEventRoundTrip(t *testing.T, ev store.Events) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	precise := time.Date(2026, 3, 4, 15, 16, 17, 987654321, zone)
	in := &api.Event{
		ID:       "ev-1",
		Time:     &api.Time{Time: precise},
		Type:     api.EventRolloutFailed,
		Severity: api.SeverityError,
		Object:   "Deployment/hello",
		Message:  "rollout hello-3-1a2b3c4d failed: build exited with 2",
		Rollout:  "hello-3-1a2b3c4d",
	}
	want := copyEvent(in)
	want.Time = api.NewTime(precise)
	mustAddEvent(t, ev, in)
	bare := &api.Event{ID: "ev-2", Object: "Node/web-1"} // no time, no type
	mustAddEvent(t, ev, copyEvent(bare))

	got := mustListEvents(t, ev, "Deployment/hello", 0)
	if diff := cmp.Diff([]*api.Event{want}, got); diff != "" {
		t.Fatalf("list differs from what was added (-want +got):\n%s", diff)
	}
	if tm := got[0].Time; tm.Location() != time.UTC || tm.Nanosecond() != 0 {
		t.Fatalf("time = %v, want UTC, whole seconds", tm)
	}
	if diff := cmp.Diff([]*api.Event{bare}, mustListEvents(t, ev, "Node/web-1", 0)); diff != "" {
		t.Fatalf("bare event (-want +got):\n%s", diff)
	}
	// Copies both ways.
	in.Message = "changed-input"
	got[0].Message = "changed-output"
	got[0].Time.Time = got[0].Time.Add(time.Hour)
	if diff := cmp.Diff([]*api.Event{want}, mustListEvents(t, ev, "Deployment/hello", 0)); diff != "" {
		t.Fatalf("store aliased an event (-want +got):\n%s", diff)
	}
	// An object without events, and all objects.
	if got := mustListEvents(t, ev, "Deployment/other", 0); len(got) != 0 {
		t.Fatalf("events of an object without any: %v", eventIDs(got))
	}
	if diff := cmp.Diff([]*api.Event{want, bare}, mustListEvents(t, ev, "", 0)); diff != "" {
		t.Fatalf("all events (-want +got):\n%s", diff)
	}
}

func testEventOrder(t *testing.T, ev store.Events) {
	// Added out of order; same seconds broken by ID, sub-second parts
	// ignored.
	sub := func(e *api.Event, ns int) *api.Event {
		e.Time = &api.Time{Time: e.Time.Add(time.Duration(ns))}
		return e
	}
	for _, e := range []*api.Event{
		Event("b", "Deployment/web", 10),
		sub(Event("a", "Deployment/web", 10), 900_000_000),
		Event("c", "Deployment/web", 5),
		Event("z", "Deployment/web", 20),
		sub(Event("d", "Deployment/web", 10), 1),
		Event("n1", "Node/n1", 15),
		Event("n2", "Node/n1", 30),
		{ID: "untimed", Object: "Deployment/web"},
		Event("api", "Deployment/api", 12),
	} {
		mustAddEvent(t, ev, e)
	}
	if diff := cmp.Diff([]string{"z", "d", "b", "a", "c", "untimed"}, eventIDs(mustListEvents(t, ev, "Deployment/web", 0))); diff != "" {
		t.Fatalf("order of Deployment/web (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"n2", "n1"}, eventIDs(mustListEvents(t, ev, "Node/n1", 0))); diff != "" {
		t.Fatalf("order of Node/n1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"n2", "z", "n1", "api", "d", "b", "a", "c", "untimed"}, eventIDs(mustListEvents(t, ev, "", 0))); diff != "" {
		t.Fatalf("order of all events (-want +got):\n%s", diff)
	}
	// Same name, other kind: another object.
	if got := mustListEvents(t, ev, "Node/web", 0); len(got) != 0 {
		t.Fatalf("Node/web has events of Deployment/web: %v", eventIDs(got))
	}
}

func testEventLimit(t *testing.T, ev store.Events) {
	for i := range 5 {
		mustAddEvent(t, ev, Event(fmt.Sprintf("w%d", i), "Deployment/web", i))
		mustAddEvent(t, ev, Event(fmt.Sprintf("n%d", i), "Node/n1", i))
	}
	for _, c := range []struct {
		object string
		limit  int
		want   []string
	}{
		{"Deployment/web", 2, []string{"w4", "w3"}},
		{"Deployment/web", 5, []string{"w4", "w3", "w2", "w1", "w0"}},
		{"Deployment/web", 6, []string{"w4", "w3", "w2", "w1", "w0"}},
		{"Deployment/web", 0, []string{"w4", "w3", "w2", "w1", "w0"}},
		{"Deployment/web", -1, []string{"w4", "w3", "w2", "w1", "w0"}},
		{"Node/n1", 1, []string{"n4"}},
		{"", 3, []string{"w4", "n4", "w3"}},
	} {
		if diff := cmp.Diff(c.want, eventIDs(mustListEvents(t, ev, c.object, c.limit))); diff != "" {
			t.Errorf("list %q limit %d (-want +got):\n%s", c.object, c.limit, diff)
		}
	}
}

func testEventDuplicate(t *testing.T, ev store.Events) {
	ctx := t.Context()
	first := Event("dup", "Deployment/web", 1)
	mustAddEvent(t, ev, copyEvent(first))
	for _, e := range []*api.Event{
		Event("dup", "Deployment/web", 2),
		Event("dup", "Node/n1", 3), // IDs are global
	} {
		if err := ev.AddEvent(ctx, e); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("add %s with a taken id: err = %v, want ErrAlreadyExists", e.Object, err)
		}
	}
	if diff := cmp.Diff([]*api.Event{first}, mustListEvents(t, ev, "", 0)); diff != "" {
		t.Fatalf("a refused add changed what is stored (-want +got):\n%s", diff)
	}
}

func testEventInvalid(t *testing.T, ev store.Events) {
	ctx := t.Context()
	if err := ev.AddEvent(ctx, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("add nil: err = %v, want ErrInvalid", err)
	}
	if err := ev.AddEvent(ctx, Event("", "Deployment/web", 0)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("add with an empty id: err = %v, want ErrInvalid", err)
	}
	for i, obj := range []string{
		"", "Deployment", "Deployment/", "/web", "web", "Deployment/web/x",
		"deployment/web", "Deployments/web", "Pod/web", "Deployment/Web",
		"Deployment/we_b", "Deployment/-web", "Deployment/" + string(make([]byte, 64)),
		"Deployment/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", // 64
		"Deployment/web\x00", "Node/../n1",
	} {
		if err := ev.AddEvent(ctx, Event(fmt.Sprintf("bad-%d", i), obj, 0)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("add for object %q: err = %v, want ErrInvalid", obj, err)
		}
		if obj == "" {
			continue // all objects
		}
		if _, err := ev.ListEvents(ctx, obj, 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("list object %q: err = %v, want ErrInvalid", obj, err)
		}
	}
	if got := mustListEvents(t, ev, "", 0); len(got) != 0 {
		t.Fatalf("refused events were stored: %v", eventIDs(got))
	}
	// The longest valid name is fine.
	long := "Deployment/" + "a123456789b123456789c123456789d123456789e123456789f123456789abc" // 63
	mustAddEvent(t, ev, Event("long", long, 0))
	if got := mustListEvents(t, ev, long, 0); len(got) != 1 {
		t.Fatalf("events of %s: %v", long, eventIDs(got))
	}
}

func testEventTrim(t *testing.T, ev store.Events) {
	ctx := t.Context()
	const maxN = store.MaxEventsPerObject
	const extra = 7
	// Another object's events, before and after, are never touched.
	mustAddEvent(t, ev, Event("other-0", "Node/n1", -1000))
	// Added in random order: the store keeps the newest by time, not the
	// last added.
	order := rand.Perm(maxN + extra)
	for _, i := range order {
		mustAddEvent(t, ev, Event(fmt.Sprintf("e%04d", i), "Deployment/web", i))
	}
	mustAddEvent(t, ev, Event("other-1", "Node/n1", 100000))
	got := mustListEvents(t, ev, "Deployment/web", 0)
	if len(got) != maxN {
		t.Fatalf("Deployment/web has %d events, want %d", len(got), maxN)
	}
	for j, e := range got {
		if want := fmt.Sprintf("e%04d", maxN+extra-1-j); e.ID != want {
			t.Fatalf("event %d is %s, want %s (the newest %d kept, newest first)", j, e.ID, want, maxN)
		}
	}
	// An event older than every kept one is dropped at once.
	if err := ev.AddEvent(ctx, Event("ancient", "Deployment/web", -5)); err != nil {
		t.Fatalf("add an event older than the kept ones: %v", err)
	}
	got = mustListEvents(t, ev, "Deployment/web", 0)
	if len(got) != maxN || got[len(got)-1].ID != fmt.Sprintf("e%04d", extra) {
		t.Fatalf("after adding an old event: %d events, oldest %s", len(got), got[len(got)-1].ID)
	}
	// A new one pushes out the oldest.
	mustAddEvent(t, ev, Event("newest", "Deployment/web", 99999))
	got = mustListEvents(t, ev, "Deployment/web", 0)
	if len(got) != maxN || got[0].ID != "newest" || got[len(got)-1].ID != fmt.Sprintf("e%04d", extra+1) {
		t.Fatalf("after adding a new event: %d events, %s … %s", len(got), got[0].ID, got[len(got)-1].ID)
	}
	// A dropped ID is free again.
	mustAddEvent(t, ev, Event("e0000", "Node/n2", 0))
	if diff := cmp.Diff([]string{"other-1", "other-0"}, eventIDs(mustListEvents(t, ev, "Node/n1", 0))); diff != "" {
		t.Fatalf("another object's events (-want +got):\n%s", diff)
	}
	if all := mustListEvents(t, ev, "", 0); len(all) != maxN+3 {
		t.Fatalf("all events: %d, want %d", len(all), maxN+3)
	}
}

func testEventText(t *testing.T, ev store.Events) {
	in := Event("odd", "Deployment/web", 0)
	in.Message = "exit status 1: \xff\xfeboom\x00 ünïcödé \xe2\x82"
	in.Type = "Weird\x00Type"
	in.Severity = "warn\xffing"
	in.Rollout = "web-1-\x00"
	want := copyEvent(in)
	want.Message = store.ValidText(in.Message)
	want.Type = store.ValidText(in.Type)
	want.Severity = store.ValidText(in.Severity)
	want.Rollout = store.ValidText(in.Rollout)
	if want.Message != "exit status 1: \ufffd\ufffdboom\ufffd ünïcödé \ufffd\ufffd" {
		t.Fatalf("store.ValidText = %q", want.Message) // the rule itself
	}
	mustAddEvent(t, ev, in)
	kept := Event("kept", "Deployment/web", 1)
	kept.Message = `kept as is: a literal \u0000, \\u0000, <&> and "quotes"` + "\n\ttabs"
	mustAddEvent(t, ev, copyEvent(kept))
	if diff := cmp.Diff([]*api.Event{kept, want}, mustListEvents(t, ev, "Deployment/web", 0)); diff != "" {
		t.Fatalf("event text (-want +got):\n%s", diff)
	}
}

func testEventConcurrent(t *testing.T, ev store.Events) {
	const writers, each = 6, 20
	objects := []string{"Deployment/web", "Node/n1"}
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := Event(fmt.Sprintf("w%d-%03d", w, i), objects[w%2], i)
				if err := ev.AddEvent(t.Context(), e); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, o := range objects {
		if got := mustListEvents(t, ev, o, 0); len(got) != writers/2*each {
			t.Fatalf("%s: %d events, want %d", o, len(got), writers/2*each)
		}
	}
}
