package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// lockAppPrefix starts the application_name of every server's lock
// connection; the rest is the server id. A key's holder is alive while a
// session with that name is connected.
const lockAppPrefix = "bakery-lock "

// maxServerID keeps application_name within PostgreSQL's 63 bytes.
const maxServerID = 63 - len(lockAppPrefix)

// CoordinatorOptions tune a Coordinator.
type CoordinatorOptions struct {
	// Interval is how often the lock connection is checked (and
	// re-made after a failure) and keys whose holder died are looked for
	// (default 2s). A key whose server died is handed to OnOrphan within
	// one Interval of the death being known to PostgreSQL.
	Interval time.Duration
	// QueryTimeout bounds each statement on the lock connection
	// (default 5s).
	QueryTimeout time.Duration
	// OnOrphan is called with every key held by a server that is gone
	// (its lock connection closed: the process died or lost the
	// database), so that this server takes it over.
	OnOrphan func(key string)
	Logger   *slog.Logger
}

// Coordinator lets several control planes share the work on one database.
// It implements store.Locker with session-level advisory locks, one per
// key, held on a dedicated connection for as long as the reconcile runs:
// PostgreSQL frees them the moment that connection ends (a killed process's
// socket is closed by the kernel), so nothing has to expire and no clock is
// trusted. Losing the connection loses every lock at once: the contexts of
// the reconciles they guard are cancelled. It also implements
// store.PortBook (port_bookings, under a per-node transaction lock), runs
// periodic jobs once across the cluster (Due) and reports who holds what
// (Leases).
type Coordinator struct {
	s    *Store
	id   string
	cfg  *pgx.ConnConfig
	opts CoordinatorOptions
	log  *slog.Logger

	mu   sync.Mutex // guards conn and held; one statement at a time on conn
	conn *pgx.Conn
	held map[string]*heldKey
}

type heldKey struct {
	since  time.Time
	cancel context.CancelCauseFunc
	// recorded: the key's row names this server as its holder (written
	// at once for a claim caused by a change, by recordHolders for a
	// periodic one held across a whole Interval).
	recorded bool
	// peers: other servers shared the database when the key was taken.
	peers bool
	// ticked: a tick has seen the key held (the next one records it).
	ticked bool
}

var (
	_ store.Locker   = (*Coordinator)(nil)
	_ store.PortBook = (*Coordinator)(nil)
)

// errNoLockConn is returned while the lock connection is down.
var errNoLockConn = errors.New("pgstore: no lock connection (database unreachable); retrying")

// NewCoordinator returns the coordinator of the server with the given id
// (see reconciler.NewServerID; at most 51 bytes) and makes its lock
// connection. Run keeps it alive.
func NewCoordinator(ctx context.Context, s *Store, id string, opts CoordinatorOptions) (*Coordinator, error) {
	if id == "" || len(id) > maxServerID {
		return nil, fmt.Errorf("pgstore: server id %q: must be 1 to %d bytes", id, maxServerID)
	}
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = lockAppPrefix + id
	// A host that vanishes without closing its socket is noticed by the
	// database after about 5 + 2×3 s: then its locks are free.
	cfg.RuntimeParams["tcp_keepalives_idle"] = "5"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "2"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	c := &Coordinator{s: s, id: id, cfg: cfg, opts: opts, log: opts.Logger.With("component", "coordinator", "server", id),
		held: map[string]*heldKey{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// ID returns the server id.
func (c *Coordinator) ID() string { return c.id }

// connect makes the lock connection; c.mu is held.
func (c *Coordinator) connect(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, c.opts.QueryTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, c.cfg)
	if err != nil {
		return fmt.Errorf("pgstore: lock connection: %w", err)
	}
	// Rows this server left holding before it lost the connection are
	// not held any more.
	if _, err := conn.Exec(cctx, `UPDATE reconcile_keys SET holder = NULL, since = NULL WHERE holder = $1`, c.id); err != nil {
		conn.Close(context.Background())
		return fmt.Errorf("pgstore: lock connection: %w", err)
	}
	c.conn = conn
	return nil
}

// broken drops the lock connection after err and cancels every reconcile
// it guarded: their locks are gone. c.mu is held.
func (c *Coordinator) broken(err error) {
	if c.conn == nil {
		return
	}
	c.log.Warn("lock connection lost; stopping the reconciles it guarded", "err", err, "keys", len(c.held))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	c.conn.Close(ctx)
	cancel()
	c.conn = nil
	for k, h := range c.held {
		h.cancel(store.ErrLockLost)
		delete(c.held, k)
	}
}

// Run keeps the lock connection up and reports orphaned keys until ctx
// ends; then it closes the connection, which frees every lock.
func (c *Coordinator) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	defer func() {
		c.mu.Lock()
		if c.conn != nil {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			c.conn.Close(cctx)
			cancel()
			c.conn = nil
		}
		for k, h := range c.held {
			h.cancel(store.ErrLockLost)
			delete(c.held, k)
		}
		c.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, k := range c.tick(ctx) {
			if c.opts.OnOrphan != nil {
				c.opts.OnOrphan(k)
			}
		}
		if due, err := c.Due(ctx, "prune-reconcile-keys", time.Hour); err == nil && due {
			if err := c.pruneKeys(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("pruning reconcile_keys", "err", err)
			}
		}
	}
}

// pruneKeys deletes the rows of keys nobody holds whose object is gone,
// and the port bookings of deployments that are gone (left behind by a
// deletion that could not forget them), once they are older than any
// rollout's booking still in use could be.
func (c *Coordinator) pruneKeys(ctx context.Context) error {
	_, err := c.s.pool.Exec(ctx, `DELETE FROM reconcile_keys k WHERE holder IS NULL
		AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.kind || '/' || o.name = k.key)`)
	if err != nil {
		return err
	}
	_, err = c.s.pool.Exec(ctx, `DELETE FROM port_bookings b WHERE b.booked_at < now() - interval '10 minutes'
		AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.kind = 'Deployment' AND o.name = b.app)`)
	return err
}

// tick checks the lock connection (re-making it when down) and returns
// the keys whose holder is gone.
func (c *Coordinator) tick(ctx context.Context) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		if err := c.connect(ctx); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("lock connection still down", "err", err)
			}
			return nil
		}
		c.log.Info("lock connection back")
	}
	qctx, cancel := context.WithTimeout(ctx, c.opts.QueryTimeout)
	defer cancel()
	rows, err := c.conn.Query(qctx, `SELECT key FROM reconcile_keys k
		WHERE holder IS NOT NULL AND holder <> $1 AND NOT EXISTS (
			SELECT 1 FROM pg_stat_activity a
			WHERE a.datname = current_database() AND a.application_name = $2 || k.holder)
		ORDER BY key`, c.id, lockAppPrefix)
	var keys []string
	if err == nil {
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err == nil {
		err = c.recordHolders(qctx)
	}
	if err != nil {
		if ctx.Err() == nil {
			c.broken(err)
		}
		return nil
	}
	return keys
}

// recordHolders writes this server as the holder of the keys it has held
// since before the last tick without a row saying so: a periodic
// reconcile that ends before the second tick after it started (within
// one to two Intervals: a converged resync) writes no row, one that runs
// longer (a rollout found to be needed) is visible in Leases and taken
// over when this server dies. c.mu is held.
func (c *Coordinator) recordHolders(ctx context.Context) error {
	var keys []string
	var since []time.Time
	for k, h := range c.held {
		switch {
		case h.recorded:
		case !h.ticked:
			h.ticked = true // taken since the last tick: maybe short
		default:
			keys = append(keys, k)
			since = append(since, h.since)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := c.conn.Exec(ctx, `INSERT INTO reconcile_keys (key, holder, since)
		SELECT k, $2, s FROM unnest($1::text[], $3::timestamptz[]) AS u(k, s)
		ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, since = excluded.since`, keys, c.id, since)
	if err != nil {
		return err
	}
	for _, k := range keys {
		c.held[k].recorded = true
	}
	return nil
}

// TryLock implements store.Locker: pg_try_advisory_lock on the key's
// 64-bit hash (hashtextextended), so a server never waits for another.
func (c *Coordinator) TryLock(ctx context.Context, cl store.Claim) (store.Lock, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return store.Lock{}, errNoLockConn
	}
	if _, ok := c.held[cl.Key]; ok {
		return store.Lock{BusyAt: time.Now()}, nil
	}
	// Not cancelled with ctx: pgx closes a connection whose query is
	// cancelled, and this one holds every lock of this server.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.QueryTimeout)
	defer cancel()
	// The finished reconcile is read in the same statement; a stale read
	// (the holder recorded it just after this snapshot) only costs one
	// reconcile that was not needed.
	var ok bool
	var now time.Time
	var doneStarted *time.Time
	var peers int
	err := c.conn.QueryRow(qctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0)), now(),
		(SELECT done_started FROM reconcile_keys WHERE key = $1),
		(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND starts_with(application_name, $2) AND application_name <> $2 || $3)`,
		cl.Key, lockAppPrefix, c.id).Scan(&ok, &now, &doneStarted, &peers)
	if err != nil {
		c.broken(err)
		return store.Lock{}, fmt.Errorf("pgstore: lock %s: %w", cl.Key, err)
	}
	if !ok {
		return store.Lock{BusyAt: now}, nil
	}
	if doneStarted != nil && ((!cl.DoneAfter.IsZero() && doneStarted.After(cl.DoneAfter)) ||
		(cl.DoneWithin > 0 && now.Sub(*doneStarted) < cl.DoneWithin)) {
		if _, err := c.conn.Exec(qctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, cl.Key); err != nil {
			c.broken(err)
		}
		return store.Lock{Skip: true}, nil
	}
	// A claim caused by a change (not a periodic resync, DoneWithin) is
	// recorded at once: it likely leads to a rollout, which a server that
	// sees this one die must take over. A periodic one is recorded only
	// if it is still held a whole Interval later (recordHolders).
	recorded := cl.DoneWithin == 0
	if recorded {
		if _, err := c.conn.Exec(qctx, `INSERT INTO reconcile_keys (key, holder, since) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET holder = $2, since = $3`, cl.Key, c.id, now); err != nil {
			c.broken(err)
			return store.Lock{}, fmt.Errorf("pgstore: lock %s: %w", cl.Key, err)
		}
	}
	lctx, lcancel := context.WithCancelCause(ctx)
	h := &heldKey{since: now, cancel: lcancel, recorded: recorded, peers: peers > 0}
	c.held[cl.Key] = h
	var once sync.Once
	release := func(done bool) {
		once.Do(func() {
			lcancel(nil)
			c.release(cl.Key, h, done)
		})
	}
	return store.Lock{Held: true, Ctx: lctx, Release: release}, nil
}

// release records the reconcile (done: finished without error) and frees
// the key, unless the lock was lost meanwhile.
func (c *Coordinator) release(key string, h *heldKey, done bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[key] != h || c.conn == nil {
		return // lost with the connection
	}
	delete(c.held, key)
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.QueryTimeout)
	defer cancel()
	// Recorded before the unlock: whoever takes the key next sees it.
	// The finished reconcile is recorded only while other servers share
	// the database (they read it to skip their resync of the key); alone,
	// a converged resync writes nothing here.
	var err error
	switch record := done && h.peers; {
	case record:
		_, err = c.conn.Exec(ctx, `INSERT INTO reconcile_keys AS k (key, done_started, done_at, done_by) VALUES ($1, $2, now(), $3)
			ON CONFLICT (key) DO UPDATE SET holder = NULL, since = NULL,
			done_started = excluded.done_started, done_at = excluded.done_at, done_by = excluded.done_by
			WHERE k.holder IS NULL OR k.holder = $3`, key, h.since, c.id)
	case h.recorded:
		_, err = c.conn.Exec(ctx, `UPDATE reconcile_keys SET holder = NULL, since = NULL WHERE key = $1 AND holder = $2`, key, c.id)
	}
	if err == nil {
		_, err = c.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key)
	}
	if err != nil {
		c.broken(err)
	}
}

// Due reports whether this server should run the periodic job name now:
// at most one server sharing the database gets true per period, whatever
// their number.
func (c *Coordinator) Due(ctx context.Context, name string, every time.Duration) (bool, error) {
	return claimJob(ctx, c.s.pool, name, every, c.id)
}

// claimJob moves the job's next_run forward by every if it is due;
// exactly one caller per period succeeds.
func claimJob(ctx context.Context, q querier, name string, every time.Duration, by string) (bool, error) {
	rows, err := q.Query(ctx, `INSERT INTO cluster_jobs AS j (name, next_run, last_run, last_server)
		VALUES ($1, now() + $2::interval, now(), $3)
		ON CONFLICT (name) DO UPDATE SET next_run = now() + $2::interval, last_run = now(), last_server = $3
		WHERE j.next_run <= now()
		RETURNING name`, name, every, by)
	if err != nil {
		return false, fmt.Errorf("pgstore: job %s: %w", name, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("pgstore: job %s: %w", name, err)
	}
	return len(got) == 1, nil
}

// Leases lists the servers connected to the database (by their lock
// connections) and the keys they hold.
func (c *Coordinator) Leases(ctx context.Context) (*api.Leases, error) {
	out := &api.Leases{Server: c.id, Servers: []api.ControlPlane{}, Leases: []api.Lease{}}
	rows, err := c.s.pool.Query(ctx, `SELECT substr(application_name, $1), backend_start FROM pg_stat_activity
		WHERE datname = current_database() AND starts_with(application_name, $2) ORDER BY 1`, len(lockAppPrefix)+1, lockAppPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgstore: leases: %w", err)
	}
	servers, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (api.ControlPlane, error) {
		var cp api.ControlPlane
		var t time.Time
		err := r.Scan(&cp.ID, &t)
		cp.Since = api.NewTime(t)
		return cp, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: leases: %w", err)
	}
	out.Servers = append(out.Servers, servers...)
	rows, err = c.s.pool.Query(ctx, `SELECT key, holder, since FROM reconcile_keys k
		WHERE holder IS NOT NULL AND EXISTS (
			SELECT 1 FROM pg_stat_activity a
			WHERE a.datname = current_database() AND a.application_name = $1 || k.holder)
		ORDER BY key`, lockAppPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgstore: leases: %w", err)
	}
	leases, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (api.Lease, error) {
		var l api.Lease
		var t time.Time
		err := r.Scan(&l.Key, &l.Server, &t)
		l.Since = api.NewTime(t)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: leases: %w", err)
	}
	out.Leases = append(out.Leases, leases...)
	return out, nil
}

// BookPorts implements store.PortBook in one transaction holding the
// node's transaction-level advisory lock.
func (c *Coordinator) BookPorts(ctx context.Context, node, app string, plan func(taken map[int]bool) ([]int, error)) (err error) {
	tx, err := c.s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: book ports: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ports/"+node); err != nil {
		return fmt.Errorf("pgstore: book ports: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT port, app = $2 FROM port_bookings WHERE node = $1`, node, app)
	if err != nil {
		return fmt.Errorf("pgstore: book ports: %w", err)
	}
	taken, had := map[int]bool{}, map[int]bool{}
	var port int32
	var own bool
	if _, err := pgx.ForEachRow(rows, []any{&port, &own}, func() error {
		if own {
			had[int(port)] = true
		} else {
			taken[int(port)] = true
		}
		return nil
	}); err != nil {
		return fmt.Errorf("pgstore: book ports: %w", err)
	}
	mine, err := plan(taken)
	if err != nil {
		return err
	}
	// Only what changed is written: a plan that books what app already
	// holds (or nothing, again) writes no row.
	var drop []int32
	for p := range had {
		if !slices.Contains(mine, p) {
			drop = append(drop, int32(p))
		}
	}
	if len(drop) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM port_bookings WHERE node = $1 AND app = $2 AND port = ANY($3)`, node, app, drop); err != nil {
			return fmt.Errorf("pgstore: book ports: %w", err)
		}
	}
	for _, p := range mine {
		if had[p] {
			continue
		}
		had[p] = true
		if _, err := tx.Exec(ctx, `INSERT INTO port_bookings (node, port, app, booked_by) VALUES ($1, $2, $3, $4)`, node, p, app, c.id); err != nil {
			return fmt.Errorf("pgstore: book port %d on %s: %w", p, node, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: book ports: %w", err)
	}
	return nil
}

// ForgetPorts implements store.PortBook.
func (c *Coordinator) ForgetPorts(ctx context.Context, app string) error {
	if _, err := c.s.pool.Exec(ctx, `DELETE FROM port_bookings WHERE app = $1`, app); err != nil {
		return fmt.Errorf("pgstore: forget ports of %s: %w", app, err)
	}
	return nil
}
