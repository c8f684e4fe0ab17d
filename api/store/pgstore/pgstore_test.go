package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB, url string, opts ...pgstore.Option) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.DatabaseURL(t))
	})
}

// next waits (bounded) for the next event on ch.
func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return store.Event{}
}

func expectEvent(t *testing.T, ch <-chan store.Event, typ store.EventType, ref string) store.Event {
	t.Helper()
	ev := next(t, ch)
	if ev.Type != typ || api.Ref(ev.Object) != ref {
		t.Fatalf("event %s %s, want %s %s", ev.Type, api.Ref(ev.Object), typ, ref)
	}
	return ev
}

// An apply on one server is seen by a watcher on another (LISTEN/NOTIFY
// across connections), and a Watch delivers only what commits after it
// started.
func TestWatchAcrossStores(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	if _, err := a.Create(ctx, storetest.Node("before", "10.0.0.1", nil)); err != nil {
		t.Fatal(err)
	}
	ch, err := b.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := []api.Object{storetest.Node("n1", "10.0.0.1", nil), storetest.Deployment("web", "/srv/repo")}
	if _, err := store.Apply(ctx, a, bundle, store.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, store.Added, "Node/n1")
	ev := expectEvent(t, ch, store.Added, "Deployment/web")
	got, err := b.Get(ctx, api.KindDeployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Object.GetObjectMeta().ResourceVersion != got.GetObjectMeta().ResourceVersion {
		t.Fatalf("event rv %s, stored %s", ev.Object.GetObjectMeta().ResourceVersion, got.GetObjectMeta().ResourceVersion)
	}
	if err := a.Delete(ctx, api.KindNode, "before", ""); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, store.Deleted, "Node/before")
}

// Many concurrent writers on two servers: every watcher sees every write,
// in resourceVersion (commit) order.
func TestWatchOrderUnderConcurrentWriters(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	ch, err := a.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 6, 10
	errs := make(chan error, writers)
	for w := range writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		go func() {
			for i := range each {
				_, err := s.Create(ctx, storetest.Node(fmt.Sprintf("n%d-%d", w, i), "10.0.0.1", nil))
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var last int64
	for range writers * each {
		ev := next(t, ch)
		var rv int64
		fmt.Sscan(ev.Object.GetObjectMeta().ResourceVersion, &rv)
		if rv <= last {
			t.Fatalf("event rv %d after %d: out of order", rv, last)
		}
		last = rv
	}
}

// The listener survives the termination of its backend and catches up on
// what was committed while it was gone.
func TestListenerReconnects(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	s := open(t, url, pgstore.WithReconnectBackoff(200*time.Millisecond, time.Second))
	ctx := t.Context()
	ch, err := s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, storetest.Node("n0", "10.0.0.1", nil)); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, store.Added, "Node/n0")

	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	err = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'bakery-listener'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate listener: %d backends, %v", killed, err)
	}
	// Written while the listener is away (it waits 200ms to reconnect):
	// their notifications go nowhere, the catch-up must find them.
	for i := 1; i <= 3; i++ {
		if _, err := s.Create(ctx, storetest.Node(fmt.Sprintf("n%d", i), "10.0.0.1", nil)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		expectEvent(t, ch, store.Added, fmt.Sprintf("Node/n%d", i))
	}
	if n := pgstore.Reconnects(s); n != 1 {
		t.Fatalf("listener reconnected %d times, want 1", n)
	}
	// And it listens again.
	if _, err := s.Create(ctx, storetest.Node("n4", "10.0.0.1", nil)); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, store.Added, "Node/n4")
}

func TestReopenKeepsData(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	ctx := t.Context()
	s, err := pgstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Create(ctx, storetest.Deployment("web", "/srv/repo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, store.Token{Name: "admin", Hash: "h", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("ping after close succeeded")
	}

	s2 := open(t, url)
	got, err := s2.Get(ctx, api.KindDeployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetObjectMeta().UID != created.GetObjectMeta().UID || got.GetObjectMeta().ResourceVersion != created.GetObjectMeta().ResourceVersion {
		t.Fatalf("reopened: %+v, created %+v", got.GetObjectMeta(), created.GetObjectMeta())
	}
	if _, err := s2.TokenByHash(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	// Resource versions keep increasing across restarts.
	d := got.DeepCopyObject().(*api.Deployment)
	d.Spec.KeepReleases = 9
	upd, err := s2.Update(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	var before, after int64
	fmt.Sscan(created.GetObjectMeta().ResourceVersion, &before)
	fmt.Sscan(upd.GetObjectMeta().ResourceVersion, &after)
	if after <= before {
		t.Fatalf("resourceVersion went from %d to %d", before, after)
	}
	if err := s2.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// A large Apply reads the kind in bulk: the results must be exactly those
// of single lookups, including objects created and deleted in the same
// transaction.
func TestLargeTxn(t *testing.T) {
	s := open(t, pgtest.DatabaseURL(t))
	ctx := t.Context()
	for i := range 5 {
		if _, err := s.Create(ctx, storetest.Node(fmt.Sprintf("old%d", i), "10.0.0.1", nil)); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Txn(ctx, func(tx store.Tx) error {
		for i := range 40 {
			if _, err := tx.Create(ctx, storetest.Node(fmt.Sprintf("new%02d", i), "10.0.0.1", nil)); err != nil {
				return err
			}
		}
		if _, err := tx.Create(ctx, storetest.Node("old3", "10.0.0.1", nil)); !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("create existing after bulk read: %v", err)
		}
		if err := tx.Delete(ctx, api.KindNode, "old1", ""); err != nil {
			return err
		}
		if _, err := tx.Get(ctx, api.KindNode, "old1"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("get deleted: %v", err)
		}
		n, err := tx.Create(ctx, storetest.Node("old1", "10.0.0.9", nil)) // re-created: a new object
		if err != nil {
			return err
		}
		l, err := tx.List(ctx, api.KindNode, store.ListOptions{})
		if err != nil || len(l) != 45 {
			return fmt.Errorf("list in txn: %d %v", len(l), err)
		}
		u := n.DeepCopyObject().(*api.Node)
		u.Spec.Port = 2200
		_, err = tx.Update(ctx, u) // after a flush
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.List(ctx, api.KindNode, store.ListOptions{})
	if err != nil || len(l) != 45 {
		t.Fatalf("after commit: %d %v", len(l), err)
	}
	o, _ := s.Get(ctx, api.KindNode, "old1")
	if o.(*api.Node).Spec.Address != "10.0.0.9" || o.(*api.Node).Spec.Port != 2200 || o.GetObjectMeta().Generation != 2 {
		t.Fatalf("old1 = %+v %+v", o.GetObjectMeta(), o.(*api.Node).Spec)
	}
}

func BenchmarkApply1000(b *testing.B) {
	s := open(b, pgtest.DatabaseURL(b))
	storetest.BenchmarkApply(b, s, 1000)
}

// closed waits (bounded) until ch is closed, discarding events.
func closed(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed within 10s")
		}
	}
}

// A watcher that does not keep up has its channel closed; others go on.
func TestSlowWatcherClosed(t *testing.T) {
	s := open(t, pgtest.DatabaseURL(t), pgstore.WithWatchBuffer(2))
	ctx := t.Context()
	slow, err := s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s.Create(ctx, storetest.Node(fmt.Sprintf("n%d", i), "10.0.0.1", nil)); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, fast, store.Added, fmt.Sprintf("Node/n%d", i))
	}
	closed(t, slow)
}

func TestCloseClosesWatches(t *testing.T) {
	s, err := pgstore.Open(t.Context(), pgtest.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(t.Context(), store.WatchOptions{Kind: api.KindNode})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watch(t.Context(), store.WatchOptions{Kind: "Pod"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("watch unknown kind: err = %v, want ErrInvalid", err)
	}
	s.Close()
	closed(t, ch)
	if _, err := s.Watch(t.Context(), store.WatchOptions{}); err == nil {
		t.Fatal("watch on a closed store succeeded")
	}
}

// Old events are pruned; a listener that was away longer than the
// retention cannot know what it missed, so its watchers are closed (they
// re-list).
func TestPruneAndLongOutage(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	s := open(t, url,
		pgstore.WithEventRetention(200*time.Millisecond),
		pgstore.WithPruneInterval(50*time.Millisecond),
		pgstore.WithReconnectBackoff(300*time.Millisecond, time.Second))
	ctx := t.Context()
	if _, err := s.Create(ctx, storetest.Node("n1", "10.0.0.1", nil)); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for deadline := time.Now().Add(10 * time.Second); ; {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events not pruned", n)
		}
		time.Sleep(20 * time.Millisecond)
	}

	ch, err := s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'bakery-listener'`); err != nil {
		t.Fatal(err)
	}
	closed(t, ch)
	// Watching again works.
	ch, err = s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, storetest.Node("n2", "10.0.0.1", nil)); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, store.Added, "Node/n2")
}

func TestTxnMisuse(t *testing.T) {
	s := open(t, pgtest.DatabaseURL(t))
	ctx := t.Context()
	var leaked store.Tx
	if err := s.Txn(ctx, func(tx store.Tx) error { leaked = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := leaked.Create(ctx, storetest.Node("n1", "10.0.0.1", nil)); err == nil {
		t.Fatal("a Tx used after its Txn returned must fail")
	}
	// The kind must match the object's type.
	n := storetest.Node("n1", "10.0.0.1", nil)
	n.Kind = api.KindDeployment
	if _, err := s.Create(ctx, n); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("mismatched kind: err = %v, want ErrInvalid", err)
	}
	// An empty kind is taken from the type.
	n.Kind = ""
	got, err := s.Create(ctx, n)
	if err != nil || got.GetTypeMeta().Kind != api.KindNode {
		t.Fatalf("create without kind: %v %v", got, err)
	}
	// A panic in fn rolls back and propagates.
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_ = s.Txn(ctx, func(tx store.Tx) error {
			if _, err := tx.Create(ctx, storetest.Node("n2", "10.0.0.1", nil)); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if _, err := s.Get(ctx, api.KindNode, "n2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("write of a panicking txn visible: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// Resource versions handed out by a transaction that rolled back (here a
// dry run) are never handed out again.
func TestResourceVersionsNotReused(t *testing.T) {
	s := open(t, pgtest.DatabaseURL(t))
	ctx := t.Context()
	bundle := []api.Object{storetest.Node("n1", "10.0.0.1", nil), storetest.Node("n2", "10.0.0.2", nil)}
	dry, err := store.Apply(ctx, s, bundle, store.ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	applied, err := store.Apply(ctx, s, bundle, store.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range append(dry, applied...) {
		rv := r.New.GetObjectMeta().ResourceVersion
		if seen[rv] {
			t.Fatalf("resourceVersion %s handed out twice", rv)
		}
		seen[rv] = true
	}
}
