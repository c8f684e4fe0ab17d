package pgstore_test

import (
	"testing"
	"time"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
)

// What a converged resync asks of the coordinator writes no row: a
// periodic claim taken and released within one Interval by a server
// alone on the database, and a plan that books the ports the app already
// holds (or none, again). A claim caused by a change, a port that changes
// and a finished reconcile while another server shares the database do
// write.
func TestCoordinatorConvergedWritesNothing(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	s := open(t, url)
	// An Interval far longer than the test: no tick records a holder.
	a := coordinator(t, s, "server-a", pgstore.CoordinatorOptions{Interval: time.Hour})
	w := pgtest.CountWrites(t, url)
	book := func(c *pgstore.Coordinator, app string, ports ...int) {
		t.Helper()
		if err := c.BookPorts(t.Context(), "n1", app, func(map[int]bool) ([]int, error) { return ports, nil }); err != nil {
			t.Fatal(err)
		}
	}
	resync := func(c *pgstore.Coordinator, key string) {
		t.Helper()
		l := tryLock(t, c, store.Claim{Key: key, DoneWithin: time.Millisecond})
		if !l.Held {
			t.Fatalf("%s: %+v, want held", key, l)
		}
		l.Release(true)
	}

	book(a, "web", 20000)
	book(a, "api")
	if got := w.Take(t); got["port_bookings"] != 1 || len(got) != 1 {
		t.Fatalf("first bookings wrote %s, want port_bookings=1", pgtest.Format(got))
	}
	for range 5 {
		resync(a, "Deployment/web")
		resync(a, "Node/n1")
		book(a, "web", 20000)
		book(a, "api")
	}
	if got := w.Take(t); len(got) != 0 {
		t.Errorf("5 converged resyncs alone wrote %s, want nothing", pgtest.Format(got))
	}

	// A change is written: a new port replaces the old one.
	book(a, "web", 20002)
	if got := w.Take(t); got["port_bookings"] != 2 {
		t.Errorf("moving web's booking wrote %s, want port_bookings=2 (one delete, one insert)", pgtest.Format(got))
	}
	// A claim caused by a change records its holder at once, and clears it.
	l := tryLock(t, a, store.Claim{Key: "Deployment/web"})
	l.Release(true)
	if got := w.Take(t); got["reconcile_keys"] != 2 {
		t.Errorf("a change's claim wrote %s, want reconcile_keys=2 (holder set, cleared)", pgtest.Format(got))
	}

	// With another server on the database, a finished resync is recorded
	// — the one write several servers need, so that only one of them
	// resyncs each key per period — in one row write.
	b := coordinator(t, open(t, url), "server-b", pgstore.CoordinatorOptions{Interval: time.Hour})
	w.Take(t)
	resync(a, "Deployment/web")
	if got := w.Take(t); got["reconcile_keys"] != 1 || len(got) != 1 {
		t.Errorf("a resync beside another server wrote %s, want reconcile_keys=1", pgtest.Format(got))
	}
	if l := tryLock(t, b, store.Claim{Key: "Deployment/web", DoneWithin: time.Minute}); !l.Skip {
		t.Errorf("b's resync after a's: %+v, want skip", l)
	}
}

// A periodic claim held longer than one Interval (a resync that found
// work) is recorded by the next tick: Leases shows it.
func TestCoordinatorRecordsLongPeriodicHolds(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	a := coordinator(t, open(t, url), "server-a", pgstore.CoordinatorOptions{Interval: 20 * time.Millisecond})
	l := tryLock(t, a, store.Claim{Key: "Deployment/web", DoneWithin: time.Millisecond})
	if !l.Held {
		t.Fatalf("%+v, want held", l)
	}
	defer l.Release(true)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ls, err := a.Leases(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ls.Leases) == 1 && ls.Leases[0].Key == "Deployment/web" && ls.Leases[0].Server == "server-a" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a long periodic hold never shows in Leases: %+v", ls.Leases)
		}
	}
}
