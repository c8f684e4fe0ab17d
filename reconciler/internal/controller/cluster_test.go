package controller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/storetest"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
)

// clusterMember is one control plane's controller on a shared database.
type clusterMember struct {
	id    string
	ctl   *Controller
	count atomic.Int64
}

// Two controllers on one database, each with its own store connection
// and coordinator: a key is never reconciled by both at once, both take
// part, a change written through one wakes the other, and resyncs are
// shared rather than doubled.
func TestControllersShareKeys(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var inFlight sync.Map // key → *atomic.Int32
	var overlaps atomic.Int64
	perKey := sync.Map{} // key → *atomic.Int64
	const resync = 400 * time.Millisecond
	var members []*clusterMember
	var wg sync.WaitGroup
	var stores []*pgstore.Store
	for i := range 2 {
		st, err := pgstore.Open(ctx, url, pgstore.WithPollInterval(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
		m := &clusterMember{id: fmt.Sprintf("member-%d", i)}
		coord, err := pgstore.NewCoordinator(ctx, st, m.id, pgstore.CoordinatorOptions{Interval: 100 * time.Millisecond,
			OnOrphan: func(k string) {
				if r, err := reconciler.ParseRequest(k); err == nil {
					m.ctl.Enqueue(r.Name)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		rec := reconciler.Func(func(ctx context.Context, req reconciler.Request) (reconciler.Result, error) {
			v, _ := inFlight.LoadOrStore(req.String(), new(atomic.Int32))
			n := v.(*atomic.Int32)
			if n.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer n.Add(-1)
			c, _ := perKey.LoadOrStore(req.String(), new(atomic.Int64))
			c.(*atomic.Int64).Add(1)
			m.count.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(30 * time.Millisecond):
			}
			return reconciler.Result{}, nil
		})
		m.ctl = New(st, rec, Options{Kind: api.KindNode, Workers: 4, Resync: resync,
			Locker: coord, LockRetry: 50 * time.Millisecond})
		members = append(members, m)
		wg.Add(2)
		go func() { defer wg.Done(); coord.Run(ctx) }()
		go func() { defer wg.Done(); m.ctl.Run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()

	const keys = 20
	for i := range keys {
		if _, err := stores[i%2].Create(ctx, storetest.Node(fmt.Sprintf("n%02d", i), "10.0.0.1", nil)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "every key reconciled", func() bool {
		n := 0
		perKey.Range(func(any, any) bool { n++; return true })
		return n == keys
	})
	before := total(&perKey)
	const window = 3 * time.Second
	time.Sleep(window)
	after := total(&perKey)
	periods := float64(window) / float64(resync)
	ratio := float64(after-before) / keys / periods
	t.Logf("reconciles per key per resync period over %s: %.2f (two controllers; 2.0 would mean each resyncs every key); by member: %d, %d",
		window, ratio, members[0].count.Load(), members[1].count.Load())
	if overlaps.Load() != 0 {
		t.Fatalf("a key was reconciled by both controllers at once %d times", overlaps.Load())
	}
	if members[0].count.Load() == 0 || members[1].count.Load() == 0 {
		t.Fatalf("one controller did nothing: %d, %d", members[0].count.Load(), members[1].count.Load())
	}
	if ratio >= 1.9 {
		t.Fatalf("resyncs are not shared: %.2f reconciles per key per period", ratio)
	}
}

func total(m *sync.Map) int64 {
	var n int64
	m.Range(func(_, v any) bool { n += v.(*atomic.Int64).Load(); return true })
	return n
}

// An action recorded in a deployment's status (a rollback pin) through
// another server's store cancels the reconcile in flight here, as a new
// spec does; a status write of the control loop's own (conditions) does
// not; and an action this server recorded itself (Supersede with the
// object) is not cancelled a second time when its store event arrives.
func TestSupersedeAcrossServers(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	open := func() *pgstore.Store {
		st, err := pgstore.Open(ctx, url, pgstore.WithPollInterval(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	here, there := open(), open()
	var starts, cancels, markers atomic.Int64
	rec := reconciler.Func(func(ctx context.Context, req reconciler.Request) (reconciler.Result, error) {
		if req.Name == "marker" {
			markers.Add(1)
			return reconciler.Result{}, nil
		}
		starts.Add(1)
		<-ctx.Done()
		cancels.Add(1)
		return reconciler.Result{}, ctx.Err()
	})
	ctl := New(here, deploymentRules{rec}, Options{Kind: api.KindDeployment, Resync: time.Hour, BaseBackoff: 10 * time.Millisecond})
	wg.Add(1)
	go func() { defer wg.Done(); ctl.Run(ctx) }()
	d := storetest.Deployment("app", "/srv/app")
	if _, err := there.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the reconcile started", func() bool { return starts.Load() == 1 })
	setStatus := func(st *pgstore.Store, mutate func(*api.DeploymentStatus)) api.Object {
		t.Helper()
		o, err := st.Get(ctx, api.KindDeployment, "app")
		if err != nil {
			t.Fatal(err)
		}
		mutate(&o.(*api.Deployment).Status)
		got, err := st.UpdateStatus(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	marker := func(name string) {
		t.Helper()
		n := markers.Load()
		m := storetest.Deployment(name, "/srv/m")
		if _, err := there.Create(ctx, m); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "the marker reconciled", func() bool { return markers.Load() > n })
	}
	setStatus(there, func(s *api.DeploymentStatus) { s.Commit = "0123" })
	setStatus(there, func(s *api.DeploymentStatus) {
		s.Pin = &api.CommitPin{Commit: "4567", Reason: api.TriggerRollback, Generation: 1}
	})
	testenv.Eventually(t, "the pinned rollback cancelled the reconcile in flight", func() bool { return cancels.Load() == 1 })
	testenv.Eventually(t, "reconciled again", func() bool { return starts.Load() == 2 })
	marker("marker")
	if c := cancels.Load(); c != 1 {
		t.Fatalf("%d cancels; a status write of the loop's own must cancel nothing", c)
	}

	// This server's own action: Supersede with the object it wrote.
	o := setStatus(here, func(s *api.DeploymentStatus) { s.Restart = "r1" })
	ctl.Supersede("app", o)
	testenv.Eventually(t, "the action superseded the reconcile", func() bool { return cancels.Load() == 2 && starts.Load() == 3 })
	if err := there.Delete(ctx, api.KindDeployment, "marker", ""); err != nil {
		t.Fatal(err)
	}
	m2 := markers.Load()
	if _, err := there.Create(ctx, storetest.Deployment("marker", "/srv/m")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the second marker reconciled", func() bool { return markers.Load() > m2 })
	if c, s := cancels.Load(), starts.Load(); c != 2 || s != 3 {
		t.Fatalf("after the action's own event: %d cancels, %d starts; want 2, 3", c, s)
	}
}

// deploymentRules is a reconciler that is superseded as the deployment
// reconciler is (its Supersedes): by the actions recorded in status too.
type deploymentRules struct{ reconciler.Func }

func (deploymentRules) Supersedes(o api.Object) string {
	return (&deployment.Reconciler{}).Supersedes(o)
}
