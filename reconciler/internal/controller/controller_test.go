package controller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/storetest"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/testenv"
)

type counter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *counter) inc(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[name]++
	return c.calls[name]
}

func (c *counter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

func runController(t *testing.T, st store.Store, rec reconciler.Reconciler, opts Options) *Controller {
	t.Helper()
	if opts.Kind == "" {
		opts.Kind = api.KindNode
	}
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff = 20 * time.Millisecond
	}
	c := New(st, rec, opts)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

func TestControllerReconcilesOnEventsAndResync(t *testing.T) {
	st := testenv.FileStore(t)
	ctx := t.Context()
	if _, err := st.Create(ctx, storetest.Node("existing", "10.0.0.1", nil)); err != nil {
		t.Fatal(err)
	}
	var c counter
	var inFlight, maxInFlight atomic.Int32
	rec := reconciler.Func(func(ctx context.Context, req reconciler.Request) (reconciler.Result, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		c.inc(req.Name)
		if req.Name == "resync" {
			return reconciler.Result{RequeueAfter: 30 * time.Millisecond}, nil
		}
		return reconciler.Result{}, nil
	})
	runController(t, st, rec, Options{Resync: time.Hour, Workers: 1})
	testenv.Eventually(t, "initial list reconciles existing", func() bool { return c.get("existing") == 1 })
	if _, err := st.Create(ctx, storetest.Node("new", "10.0.0.2", nil)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "create event reconciles new", func() bool { return c.get("new") == 1 })
	// A status write by a reconciler does not trigger another reconcile.
	o, _ := st.Get(ctx, api.KindNode, "new")
	o.(*api.Node).Status.Reachable = true
	if _, err := st.UpdateStatus(ctx, o); err != nil {
		t.Fatal(err)
	}
	// A spec change does.
	n := o.DeepCopyObject().(*api.Node)
	n.Spec.Port = 2222
	n.Metadata.ResourceVersion = ""
	if _, err := st.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "spec change reconciles new again", func() bool { return c.get("new") == 2 })
	if _, err := st.Create(ctx, storetest.Node("resync", "10.0.0.3", nil)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "RequeueAfter reconciles again", func() bool { return c.get("resync") >= 3 })
	if got := c.get("new"); got != 2 {
		t.Fatalf("new reconciled %d times, want 2 (status writes must not trigger)", got)
	}
	if maxInFlight.Load() > 1 {
		t.Fatalf("%d reconciles ran at once with 1 worker", maxInFlight.Load())
	}
}

func TestControllerRetriesErrorsNotTerminal(t *testing.T) {
	st := testenv.FileStore(t)
	ctx := t.Context()
	var c counter
	rec := reconciler.Func(func(ctx context.Context, req reconciler.Request) (reconciler.Result, error) {
		n := c.inc(req.Name)
		switch req.Name {
		case "flaky":
			if n < 3 {
				return reconciler.Result{}, errors.New("transient")
			}
		case "terminal":
			return reconciler.Result{}, reconciler.Terminal(errors.New("host key mismatch"))
		case "panics":
			if n == 1 {
				panic("boom")
			}
		}
		return reconciler.Result{}, nil
	})
	runController(t, st, rec, Options{Resync: time.Hour, BaseBackoff: 10 * time.Millisecond})
	for _, name := range []string{"flaky", "terminal", "panics"} {
		if _, err := st.Create(ctx, storetest.Node(name, "10.0.0.1", nil)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "flaky retried until success", func() bool { return c.get("flaky") == 3 })
	testenv.Eventually(t, "panic recovered and retried", func() bool { return c.get("panics") == 2 })
	// The terminal error is not retried: after the other keys settled,
	// give the queue several backoff periods and check the count.
	time.Sleep(200 * time.Millisecond)
	if got := c.get("terminal"); got != 1 {
		t.Fatalf("terminal error retried: %d calls", got)
	}
	if got := c.get("flaky"); got != 3 {
		t.Fatalf("flaky reconciled %d times after success, want 3 (resync is 1h)", got)
	}
}

// A key that keeps failing is retried at least once per MaxBackoff, and
// never later than Resync when that is shorter (the backoff's cap).
func TestControllerBackoffCapped(t *testing.T) {
	for _, tc := range []struct {
		name               string
		resync, maxBackoff time.Duration
		cap                time.Duration
	}{
		{"max backoff", time.Hour, 150 * time.Millisecond, 150 * time.Millisecond},
		{"resync", 150 * time.Millisecond, time.Hour, 150 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := testenv.FileStore(t)
			var mu sync.Mutex
			var times []time.Time
			rec := reconciler.Func(func(ctx context.Context, req reconciler.Request) (reconciler.Result, error) {
				mu.Lock()
				times = append(times, time.Now())
				mu.Unlock()
				return reconciler.Result{}, errors.New("node unreachable")
			})
			runController(t, st, rec, Options{Resync: tc.resync, BaseBackoff: 10 * time.Millisecond, MaxBackoff: tc.maxBackoff})
			if _, err := st.Create(t.Context(), storetest.Node("down", "10.0.0.1", nil)); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, "many retries", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) >= 12 })
			mu.Lock()
			defer mu.Unlock()
			var longest time.Duration
			for i := 1; i < len(times); i++ {
				longest = max(longest, times[i].Sub(times[i-1]))
			}
			// The cap plus scheduling slack; uncapped, the 12th retry
			// would come 10ms·2¹¹ ≈ 20 s after the 11th.
			if longest > tc.cap+100*time.Millisecond {
				t.Fatalf("longest gap between retries %v, want at most %v", longest, tc.cap)
			}
		})
	}
}

func TestControllerSupersedeCancelsRunning(t *testing.T) {
	st := testenv.FileStore(t)
	ctx := t.Context()
	started := make(chan struct{}, 4)
	var c counter
	rec := reconciler.Func(func(ctx context.Context, req reconciler.Request) (reconciler.Result, error) {
		if c.inc(req.Name) == 1 {
			started <- struct{}{}
			<-ctx.Done() // a long rollout step
			return reconciler.Result{}, ctx.Err()
		}
		return reconciler.Result{}, nil
	})
	ctrl := runController(t, st, rec, Options{Resync: time.Hour})
	if _, err := st.Create(ctx, storetest.Node("app", "10.0.0.1", nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("reconcile did not start")
	}
	ctrl.Supersede("app", nil)
	testenv.Eventually(t, "superseded reconcile cancelled and run again", func() bool { return c.get("app") == 2 })
}

func TestMain(m *testing.M) { pgtest.Main(m) }
