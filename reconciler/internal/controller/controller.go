package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/queue"
)

// DefaultMaxBackoff is Options.MaxBackoff when it is not set.
const DefaultMaxBackoff = time.Minute

// Options configure a Controller.
type Options struct {
	// Kind is the kind of object the controller reconciles.
	Kind string
	// Workers bounds concurrent reconciles (default 4).
	Workers int
	// Resync is how often every object is reconciled again when nothing
	// else happens (drift detection; default 30s).
	Resync time.Duration
	// BaseBackoff and MaxBackoff bound retry delays (default 1s and 1m).
	// A failing key is retried at least once per MaxBackoff, and never
	// later than Resync: the backoff is capped by the smaller of the two.
	BaseBackoff, MaxBackoff time.Duration
	// Locker is the exclusivity point: a key is reconciled by at most one
	// worker across every control plane sharing the store (the postgres
	// store's is pgstore.Coordinator). In-process exclusivity comes from
	// the queue already, so a single control plane uses the default,
	// store.NopLocker (every key is free).
	Locker store.Locker
	// LockRetry is how soon a key another control plane holds is tried
	// again (default 2s): it bounds how long a key waits after its
	// holder finished or died.
	LockRetry time.Duration
	Logger    *slog.Logger
}

// Controller runs a Reconciler for every object of one kind.
type Controller struct {
	opts  Options
	rec   reconciler.Reconciler
	store store.Store
	queue *queue.Queue
	log   *slog.Logger

	mu      sync.Mutex
	running map[string]context.CancelFunc
	// busy holds, per key found held by another control plane, the
	// store's time of the first such attempt: a reconcile that started
	// after it and finished makes this one unnecessary.
	busy map[string]time.Time
	// tokens holds, per name, what supersedes its reconciles as last
	// seen (supersedes): a change cancels the reconcile in flight.
	tokens map[string]string
	// periodic holds the keys queued only by a timer (resync,
	// RequeueAfter), with half the period: a reconcile by another
	// control plane within it makes this one unnecessary.
	periodic map[string]time.Duration
}

// New returns a controller for objects of opts.Kind in st.
func New(st store.Store, rec reconciler.Reconciler, opts Options) *Controller {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = min(opts.MaxBackoff, opts.Resync)
	opts.BaseBackoff = min(opts.BaseBackoff, opts.MaxBackoff)
	if opts.Locker == nil {
		opts.Locker = store.NopLocker{}
	}
	if opts.LockRetry <= 0 {
		opts.LockRetry = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Controller{
		opts:     opts,
		rec:      rec,
		store:    st,
		queue:    queue.New(opts.BaseBackoff, opts.MaxBackoff),
		log:      opts.Logger.With("controller", opts.Kind),
		running:  map[string]context.CancelFunc{},
		busy:     map[string]time.Time{},
		periodic: map[string]time.Duration{},
		tokens:   map[string]string{},
	}
}

// Kind is the kind of object the controller reconciles.
func (c *Controller) Kind() string { return c.opts.Kind }

// Enqueue asks for name to be reconciled soon.
func (c *Controller) Enqueue(name string) {
	key := reconciler.Request{Kind: c.opts.Kind, Name: name}.String()
	c.mu.Lock()
	// Something happened: whatever another control plane did before is
	// no reason to skip this reconcile.
	delete(c.busy, key)
	delete(c.periodic, key)
	c.mu.Unlock()
	c.queue.Add(key)
}

// after queues key again in d, a timer's request that another control
// plane's reconcile within d/2 satisfies.
func (c *Controller) after(key string, d time.Duration) {
	c.mu.Lock()
	c.periodic[key] = d / 2
	c.mu.Unlock()
	c.queue.AddAfter(key, d)
}

// Run watches the store, lists every object once, and reconciles until ctx
// ends. It returns after every worker has stopped.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.watchLoop(ctx)
	}()
	for range c.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// watchLoop turns store events into queue keys. It (re)starts a watch,
// then lists everything, so that nothing changed between two watches is
// missed; a closed watch (the watcher fell behind, or the store
// reconnected) is simply restarted.
func (c *Controller) watchLoop(ctx context.Context) {
	delay := 100 * time.Millisecond
	seen := map[string]string{} // last generation and metadata seen per name
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(ctx)
		events, err := c.store.Watch(wctx, store.WatchOptions{Kind: c.opts.Kind})
		if err == nil {
			err = c.enqueueAll(ctx)
		}
		if err != nil {
			cancel()
			c.log.Warn("watch failed; retrying", "err", err, "in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(delay*2, 10*time.Second)
			continue
		}
		delay = 100 * time.Millisecond
		for ev := range events {
			m := ev.Object.GetObjectMeta()
			switch ev.Type {
			case store.Deleted:
				delete(seen, m.Name)
				c.mu.Lock()
				delete(c.tokens, m.Name)
				c.mu.Unlock()
				c.cancelRunning(reconciler.Request{Kind: c.opts.Kind, Name: m.Name}.String())
			case store.Modified:
				// Status writes (the reconcilers' own) do not change the
				// generation: they are not a reason to reconcile again.
				prev, ok := seen[m.Name]
				if ok && prev == c.version(ev.Object) {
					continue
				}
				if c.newToken(m.Name, c.supersedes(ev.Object)) {
					// A newer spec or action supersedes the reconcile in
					// flight (a rollout of the old spec is cancelled,
					// its remote process killed) — also when another
					// control plane's API recorded the action.
					c.cancelRunning(reconciler.Request{Kind: c.opts.Kind, Name: m.Name}.String())
				}
			case store.Added:
				c.newToken(m.Name, c.supersedes(ev.Object))
			}
			if ev.Type != store.Deleted {
				seen[m.Name] = c.version(ev.Object)
			}
			c.Enqueue(m.Name)
		}
		cancel()
	}
}

// version identifies what users changed in an object: what supersedes a
// reconcile in flight, and its labels and annotations. The control loop's
// own status writes change neither.
func (c *Controller) version(o api.Object) string {
	m := o.GetObjectMeta()
	b, _ := json.Marshal([2]map[string]string{m.Labels, m.Annotations})
	return c.supersedes(o) + "\n" + string(b)
}

// supersedes identifies what makes a reconcile in flight obsolete: the
// generation (spec) and, when the reconciler is a reconciler.Superseder,
// what it says (for a deployment, the actions recorded in its status).
func (c *Controller) supersedes(o api.Object) string {
	s := fmt.Sprint(o.GetObjectMeta().Generation)
	if sp, ok := c.rec.(reconciler.Superseder); ok {
		s += "/" + sp.Supersedes(o)
	}
	return s
}

func (c *Controller) enqueueAll(ctx context.Context) error {
	objs, err := c.store.List(ctx, c.opts.Kind, store.ListOptions{})
	if err != nil {
		return err
	}
	for _, o := range objs {
		c.Enqueue(o.GetObjectMeta().Name)
	}
	return nil
}

// newToken records what supersedes name's reconciles now (supersedes)
// and reports whether it changed since last recorded.
func (c *Controller) newToken(name, tok string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.tokens[name]
	c.tokens[name] = tok
	return ok && old != tok
}

// Supersede cancels the reconcile of name that is running now, if any,
// and enqueues name again: a newer spec or action wins over an in-flight
// rollout. current, when not nil, is the object as the action left it:
// the reconcile is cancelled once, whether this call or the action's
// store event comes first (what starts after either sees the action).
func (c *Controller) Supersede(name string, current api.Object) {
	key := reconciler.Request{Kind: c.opts.Kind, Name: name}.String()
	cancel := true
	if current != nil {
		tok := c.supersedes(current)
		c.mu.Lock()
		// The store event came first: the watch cancelled already, and
		// what runs now started after it.
		cancel = c.tokens[name] != tok
		c.tokens[name] = tok
		c.mu.Unlock()
	}
	if cancel {
		c.cancelRunning(key)
	}
	c.queue.Add(key)
}

func (c *Controller) cancelRunning(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel, ok := c.running[key]; ok {
		cancel()
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, ok := c.queue.Get()
	if !ok {
		return false
	}
	defer c.queue.Done(key)
	req, err := reconciler.ParseRequest(key)
	if err != nil {
		c.log.Error("dropping bad key", "key", key, "err", err)
		return true
	}
	rctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.running[key] = cancel
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.running, key)
		c.mu.Unlock()
		cancel()
	}()

	claim := store.Claim{Key: key}
	c.mu.Lock()
	claim.DoneAfter, claim.DoneWithin = c.busy[key], c.periodic[key]
	c.mu.Unlock()
	lk, err := c.opts.Locker.TryLock(rctx, claim)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			c.log.Debug("cannot take the key; retrying", "key", key, "err", err)
			c.queue.AddAfter(key, c.opts.LockRetry)
		}
		return true
	case lk.Skip:
		// Another control plane did this work since it was asked for.
		c.mu.Lock()
		delete(c.busy, key)
		c.mu.Unlock()
		c.queue.Forget(key)
		c.after(key, jitter(c.opts.Resync))
		return true
	case !lk.Held:
		// Another control plane reconciles it now: look again soon (it
		// may die), but do not redo what it finishes.
		c.mu.Lock()
		if _, ok := c.busy[key]; !ok {
			c.busy[key] = lk.BusyAt
		}
		c.mu.Unlock()
		c.queue.AddAfter(key, c.opts.LockRetry)
		return true
	}
	c.mu.Lock()
	delete(c.busy, key)
	delete(c.periodic, key)
	c.mu.Unlock()
	res, err := c.reconcile(lk.Ctx, req)
	// The lock's context ended before Release: the lock was lost (or the
	// reconcile was cancelled), and what ran is not recorded as done.
	lost := lk.Ctx.Err() != nil && rctx.Err() == nil
	lk.Release(err == nil && lk.Ctx.Err() == nil)
	if lost && err == nil {
		err = errors.New("lock lost during the reconcile")
	}
	if ctx.Err() == nil { // shutting down: nothing to schedule
		c.schedule(key, res, err)
	}
	return true
}

// schedule queues key again as Result documents: after a backoff on an
// error (never on a terminal one), after RequeueAfter, or at the resync.
func (c *Controller) schedule(key string, res reconciler.Result, err error) {
	switch {
	case err != nil && reconciler.IsTerminal(err):
		c.log.Warn("reconcile failed; not retrying (terminal)", "key", key, "err", err)
		c.queue.Forget(key)
	case err != nil:
		n := c.queue.Failures(key)
		c.log.Info("reconcile failed; retrying with backoff", "key", key, "err", err, "failures", n+1)
		c.queue.AddRateLimited(key)
	case res.RequeueAfter > 0:
		c.queue.Forget(key)
		c.after(key, res.RequeueAfter)
	default:
		c.queue.Forget(key)
		c.after(key, jitter(c.opts.Resync))
	}
}

// reconcile calls the reconciler, turning a panic into an error.
func (c *Controller) reconcile(ctx context.Context, req reconciler.Request) (res reconciler.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("reconcile panicked", "key", req.String(), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("reconcile %s panicked: %v", req, r)
		}
	}()
	return c.rec.Reconcile(ctx, req)
}

// jitter spreads resyncs by up to +10 % so that objects created together
// do not stay in lockstep.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}
