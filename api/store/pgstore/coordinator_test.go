package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/storetest"
)

func coordinator(t *testing.T, s *pgstore.Store, id string, opts pgstore.CoordinatorOptions) *pgstore.Coordinator {
	t.Helper()
	c, err := pgstore.NewCoordinator(t.Context(), s, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func tryLock(t *testing.T, c *pgstore.Coordinator, cl store.Claim) store.Lock {
	t.Helper()
	l, err := c.TryLock(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A key is held by one server at a time; the other sees it busy, then
// free; a reconcile the holder finished after the other's attempt makes
// the other's claim unnecessary (Skip); Leases shows who holds what.
func TestCoordinatorExclusiveKeys(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	a := coordinator(t, open(t, url), "server-a", pgstore.CoordinatorOptions{})
	b := coordinator(t, open(t, url), "server-b", pgstore.CoordinatorOptions{})
	const key = "Deployment/web"

	la := tryLock(t, a, store.Claim{Key: key})
	if !la.Held {
		t.Fatalf("a: %+v, want held", la)
	}
	lb := tryLock(t, b, store.Claim{Key: key})
	if lb.Held || lb.Skip || lb.BusyAt.IsZero() {
		t.Fatalf("b while a holds it: %+v, want busy", lb)
	}
	ls, err := b.Leases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Leases) != 1 || ls.Leases[0].Key != key || ls.Leases[0].Server != "server-a" || ls.Leases[0].Since == nil {
		t.Fatalf("leases: %+v", ls.Leases)
	}
	var ids []string
	for _, s := range ls.Servers {
		ids = append(ids, s.ID)
	}
	if !slices.Equal(ids, []string{"server-a", "server-b"}) || ls.Server != "server-b" {
		t.Fatalf("servers: %v (answered by %s)", ids, ls.Server)
	}

	la.Release(true)
	if la.Ctx.Err() == nil {
		t.Fatal("the lock's context is still live after Release")
	}
	if l := tryLock(t, b, store.Claim{Key: key, DoneAfter: lb.BusyAt.Add(-time.Hour)}); !l.Skip {
		t.Fatalf("b after a finished a reconcile it started later: %+v, want skip", l)
	}
	if l := tryLock(t, b, store.Claim{Key: key, DoneWithin: time.Hour}); !l.Skip {
		t.Fatalf("b, a resync within the hour: %+v, want skip", l)
	}
	l := tryLock(t, b, store.Claim{Key: key, DoneAfter: lb.BusyAt.Add(time.Hour)})
	if !l.Held {
		t.Fatalf("b with a newer request: %+v, want held", l)
	}
	// A failed reconcile is not recorded as done.
	l.Release(false)
	if l := tryLock(t, a, store.Claim{Key: key, DoneAfter: lb.BusyAt.Add(time.Second)}); !l.Held {
		t.Fatalf("a after b failed: %+v, want held", l)
	} else {
		l.Release(true)
	}
	ls, err = a.Leases(t.Context())
	if err != nil || len(ls.Leases) != 0 {
		t.Fatalf("leases after release: %+v, %v", ls, err)
	}
}

// A server whose lock connection dies (here: terminated by an admin, as
// when the process is killed or the database restarts) loses its keys:
// the reconciles they guard are cancelled, another server is told about
// the orphaned key and takes it, and the first reconnects.
func TestCoordinatorTakeover(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	orphans := make(chan string, 10)
	a := coordinator(t, open(t, url), "server-a", pgstore.CoordinatorOptions{Interval: 100 * time.Millisecond})
	b := coordinator(t, open(t, url), "server-b", pgstore.CoordinatorOptions{Interval: 100 * time.Millisecond,
		OnOrphan: func(k string) { orphans <- k }})
	la := tryLock(t, a, store.Claim{Key: "Deployment/web"})
	if !la.Held {
		t.Fatal("not held")
	}
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	if err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'bakery-lock server-a'`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate: %d, %v", killed, err)
	}
	select {
	case k := <-orphans:
		if k != "Deployment/web" {
			t.Fatalf("orphan %q", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b was not told about the orphaned key")
	}
	if l := tryLock(t, b, store.Claim{Key: "Deployment/web"}); !l.Held {
		t.Fatalf("b: %+v, want held", l)
	} else {
		defer l.Release(true)
	}
	select {
	case <-la.Ctx.Done():
		if !errors.Is(context.Cause(la.Ctx), store.ErrLockLost) {
			t.Fatalf("cause %v, want ErrLockLost", context.Cause(la.Ctx))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a's reconcile was not cancelled after its lock was lost")
	}
	la.Release(true) // harmless after the loss
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := a.TryLock(t.Context(), store.Claim{Key: "Deployment/other"})
		if err == nil && l.Held {
			l.Release(true)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a did not reconnect: %+v, %v", l, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ls, err := a.Leases(t.Context())
	if err != nil || len(ls.Leases) != 1 || ls.Leases[0].Server != "server-b" {
		t.Fatalf("leases: %+v, %v", ls, err)
	}
}

// Of several servers asking whether a periodic job is due, one gets yes
// per period.
func TestCoordinatorJobOncePerPeriod(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	var cs []*pgstore.Coordinator
	for i := range 4 {
		cs = append(cs, coordinator(t, open(t, url), fmt.Sprintf("s%d", i), pgstore.CoordinatorOptions{}))
	}
	var mu sync.Mutex
	yes := 0
	var wg sync.WaitGroup
	for round := 0; round < 3; round++ {
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				due, err := c.Due(t.Context(), "sweep", time.Hour)
				if err != nil {
					t.Error(err)
				}
				if due {
					mu.Lock()
					yes++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if yes != 1 {
		t.Fatalf("the job was due %d times, want once", yes)
	}
}

// Two servers booking ports on one node at once never get the same one.
func TestCoordinatorPortBook(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	a := coordinator(t, open(t, url), "server-a", pgstore.CoordinatorOptions{})
	b := coordinator(t, open(t, url), "server-b", pgstore.CoordinatorOptions{})
	got := map[int]string{}
	var wg sync.WaitGroup
	for i := range 20 {
		c := a
		if i%2 == 1 {
			c = b
		}
		app := fmt.Sprintf("app%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.BookPorts(t.Context(), "n1", app, func(taken map[int]bool) ([]int, error) {
				p := 20000
				for taken[p] {
					p++
				}
				return []int{p}, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Every app holds one port; all differ.
	err := a.BookPorts(t.Context(), "n1", "probe", func(taken map[int]bool) ([]int, error) {
		for p := range taken {
			got[p] = "x"
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 {
		t.Fatalf("20 apps booked %d distinct ports", len(got))
	}
	// A new plan replaces the app's bookings; forgetting drops them.
	if err := b.BookPorts(t.Context(), "n1", "app0", func(map[int]bool) ([]int, error) { return []int{29000, 29001}, nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.ForgetPorts(t.Context(), "app1"); err != nil {
		t.Fatal(err)
	}
	var taken map[int]bool
	if err := a.BookPorts(t.Context(), "n1", "probe", func(tk map[int]bool) ([]int, error) { taken = tk; return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if len(taken) != 20 || !taken[29000] || !taken[29001] {
		t.Fatalf("after replace and forget: %d ports taken: %v", len(taken), taken)
	}
}

// A write through one server wakes a watcher on another through
// LISTEN/NOTIFY alone (polling is set to an hour), and keeps doing so
// after the listener's connection is cut.
func TestWatchAcrossServersByNotify(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	a := open(t, url, pgstore.WithPollInterval(time.Hour))
	b := open(t, url, pgstore.WithPollInterval(time.Hour), pgstore.WithReconnectBackoff(50*time.Millisecond, 100*time.Millisecond))
	ch, err := b.Watch(t.Context(), store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Create(t.Context(), storetest.Node("n1", "10.0.0.1", nil)); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, store.Added, "Node/n1")
}

// The rows of deleted objects that nobody holds are pruned; held keys and
// keys of existing objects stay.
func TestCoordinatorPrunesKeys(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	s := open(t, url)
	c := coordinator(t, s, "server-a", pgstore.CoordinatorOptions{})
	if _, err := s.Create(t.Context(), storetest.Node("n1", "10.0.0.1", nil)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Node/n1", "Node/gone"} {
		tryLock(t, c, store.Claim{Key: k}).Release(true)
	}
	held := tryLock(t, c, store.Claim{Key: "Node/gone-but-held"})
	defer held.Release(true)
	// Port bookings: of a deployment that exists, of one gone (old), and
	// of one gone but booked just now (a test's, or a race): only the old
	// one of the gone deployment is pruned.
	if _, err := s.Create(t.Context(), storetest.Deployment("web", "/srv/git/web")); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(t.Context(), `INSERT INTO port_bookings (node, port, app, booked_by, booked_at) VALUES
		('n1', 20000, 'web', 'x', now() - interval '1 hour'), ('n1', 20002, 'gone', 'x', now() - interval '1 hour'),
		('n1', 20004, 'new', 'x', now())`); err != nil {
		t.Fatal(err)
	}
	if err := pgstore.PruneKeys(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	prows, _ := admin.Query(t.Context(), `SELECT app FROM port_bookings ORDER BY app`)
	if apps, err := pgx.CollectRows(prows, pgx.RowTo[string]); err != nil || !slices.Equal(apps, []string{"new", "web"}) {
		t.Fatalf("port bookings after pruning: %v, %v", apps, err)
	}
	rows, _ := admin.Query(t.Context(), `SELECT key FROM reconcile_keys ORDER BY key`)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"Node/gone-but-held", "Node/n1"}) {
		t.Fatalf("after pruning: %v", keys)
	}
}
