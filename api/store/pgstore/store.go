package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/migrations"
)

// writeLockKey is the advisory lock every writing transaction holds ("bakery
// w" in ASCII). It must never change: servers of different versions share
// it.
const writeLockKey int64 = 0x62616b6572792077

// channel is the LISTEN/NOTIFY channel writes notify.
const channel = "bakery_events"

// Application names, visible in pg_stat_activity.
const (
	appName         = "bakery"
	listenerAppName = "bakery-listener"
)

// Option configures Open.
type Option func(*config)

type config struct {
	logger       *slog.Logger
	retention    time.Duration
	pruneEvery   time.Duration
	pollEvery    time.Duration
	watchBuffer  int
	backoffMin   time.Duration
	backoffMax   time.Duration
	prefetchMiss int
}

// WithLogger sets the logger for the listener's connection problems
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithEventRetention sets how long events are kept for listeners to catch
// up after a disconnect (default 10 minutes).
func WithEventRetention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// WithPruneInterval sets how often old events are deleted (default 1
// minute).
func WithPruneInterval(d time.Duration) Option { return func(c *config) { c.pruneEvery = d } }

// WithPollInterval sets how often the listener reads events without being
// notified, as a safety net (default 5 seconds).
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollEvery = d } }

// WithWatchBuffer sets each watcher's channel capacity (default 1024). A
// watcher with a full channel has it closed.
func WithWatchBuffer(n int) Option { return func(c *config) { c.watchBuffer = n } }

// WithReconnectBackoff sets the listener's reconnect backoff bounds
// (default 100ms, doubling to 10s).
func WithReconnectBackoff(min, max time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = min, max }
}

// Store is a store.Store on PostgreSQL.
type Store struct {
	// Writes runs Create, Update, UpdateStatus and Delete each in a Txn.
	store.Writes

	pool *pgxpool.Pool
	cfg  config
	log  *slog.Logger
	hub  *hub

	reconnects atomic.Int64 // of the listener, for tests
	// attemptsSwept is when ended attempt windows were last deleted
	// (UnixNano; sweepAttempts).
	attemptsSwept atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{} // closed by Close
	once   sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to databaseURL (a postgres:// URL or key=value DSN; pool
// settings such as pool_max_conns are honoured), applies pending
// migrations and starts listening for changes. Close releases everything.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*Store, error) {
	c := config{
		logger:       slog.Default(),
		retention:    10 * time.Minute,
		pruneEvery:   time.Minute,
		pollEvery:    5 * time.Second,
		watchBuffer:  1024,
		backoffMin:   100 * time.Millisecond,
		backoffMax:   10 * time.Second,
		prefetchMiss: 16,
	}
	for _, o := range opts {
		o(&c)
	}
	pcfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if pcfg.ConnConfig.RuntimeParams["application_name"] == "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	lcfg := pcfg.ConnConfig.Copy()
	lcfg.RuntimeParams["application_name"] = listenerAppName

	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if err := migrations.Apply(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	var last int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&last); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: read event position: %w", err)
	}
	s := &Store{
		pool: pool,
		cfg:  c,
		log:  c.logger.With("component", "pgstore"),
		done: make(chan struct{}),
	}
	s.Writes = store.Writes{Txn: s.Txn}
	s.hub = newHub(s, last)
	l := &listener{s: s, cfg: lcfg, last: last}
	// The first connection is made here so that Open fails on a database
	// the listener cannot reach, and so that LISTEN is in place on return.
	conn, err := l.connect(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: listener: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go func() { defer s.wg.Done(); l.run(runCtx, conn) }()
	go func() { defer s.wg.Done(); s.prune(runCtx) }()
	return s, nil
}

// Close stops the listener, closes every watcher's channel and the pool.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.cancel()
		close(s.done)
		s.wg.Wait()
		s.hub.closeAll()
		s.pool.Close()
	})
	return nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	return nil
}

// Get implements store.Reader.
func (s *Store) Get(ctx context.Context, kind, name string) (api.Object, error) {
	if err := store.CheckName(kind, name); err != nil {
		return nil, err
	}
	r, err := getRow(ctx, s.pool, kind, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, notFound(kind, name)
	}
	return r.object()
}

// List implements store.Reader.
func (s *Store) List(ctx context.Context, kind string, opts store.ListOptions) ([]api.Object, error) {
	return list(ctx, s.pool, kind, opts)
}

// Txn implements store.Store. The transaction takes the write lock first
// (see the package documentation), so concurrent transactions run one
// after another; fn must use tx only, never s.
func (s *Store) Txn(ctx context.Context, fn func(tx store.Tx) error) (err error) {
	pgtx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: begin: %w", mapErr(err))
	}
	t := &tx{s: s, pgtx: pgtx}
	committed := false
	defer func() {
		t.mu.Lock()
		t.finished = true
		t.mu.Unlock()
		if !committed {
			// Also on panic; the panic continues after the rollback.
			_ = pgtx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := t.begin(ctx); err != nil {
		return err
	}
	fnErr := fn(t)
	if fnErr != nil && !errors.Is(fnErr, store.ErrRollback) {
		return fnErr
	}
	if err := t.written.Check(ctx, t); err != nil {
		return err
	}
	if fnErr != nil {
		return fnErr // rolled back
	}
	t.mu.Lock()
	err = t.flush(ctx)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if err := pgtx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: commit: %w", mapErr(err))
	}
	committed = true
	return nil
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context, opts store.WatchOptions) (<-chan store.Event, error) {
	if opts.Kind != "" {
		if _, err := api.New(opts.Kind); err != nil {
			return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
		}
	}
	return s.hub.watch(ctx, opts.Kind)
}

// CreateToken implements store.Tokens.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tokens (name, hash, created_at) VALUES ($1, $2, $3)`, t.Name, t.Hash, t.CreatedAt)
	if err != nil {
		return fmt.Errorf("pgstore: create token %q: %w", t.Name, mapErr(err))
	}
	return nil
}

// TokenByHash implements store.Tokens.
func (s *Store) TokenByHash(ctx context.Context, h string) (store.Token, error) {
	var t store.Token
	err := s.pool.QueryRow(ctx, `SELECT name, hash, created_at FROM tokens WHERE hash = $1`, h).Scan(&t.Name, &t.Hash, &t.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Token{}, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("pgstore: token by hash: %w", mapErr(err))
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return t, nil
}

// ListTokens implements store.Tokens.
func (s *Store) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, hash, created_at FROM tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list tokens: %w", mapErr(err))
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Token, error) {
		var t store.Token
		err := r.Scan(&t.Name, &t.Hash, &t.CreatedAt)
		t.CreatedAt = t.CreatedAt.UTC()
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: list tokens: %w", mapErr(err))
	}
	return ts, nil
}

// DeleteToken implements store.Tokens.
func (s *Store) DeleteToken(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM tokens WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("pgstore: delete token %q: %w", name, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("token %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// prune deletes events older than the retention, periodically.
func (s *Store) prune(ctx context.Context) {
	t := time.NewTicker(s.cfg.pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Once per period across every server sharing the database, and
		// only when there is something to prune: an idle database (a
		// converged loop) gets no write, not even the job's claim.
		var stale bool
		err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE created_at < now() - $1::interval)`, s.cfg.retention).Scan(&stale)
		if err == nil && stale {
			var due bool
			due, err = claimJob(ctx, s.pool, "prune-events", s.cfg.pruneEvery-s.cfg.pruneEvery/10, appName)
			if err == nil && due {
				_, err = s.pool.Exec(ctx, `DELETE FROM events WHERE created_at < now() - $1::interval`, s.cfg.retention)
			}
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("prune events", "err", err)
		}
	}
}

// querier is what reads need: the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func list(ctx context.Context, q querier, kind string, opts store.ListOptions) ([]api.Object, error) {
	if _, err := api.New(kind); err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	rows, err := q.Query(ctx, `SELECT `+rowColumns+` FROM objects WHERE kind = $1 ORDER BY name`, kind)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list %s: %w", kind, mapErr(err))
	}
	rs, err := pgx.CollectRows(rows, scanRow)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list %s: %w", kind, mapErr(err))
	}
	out := []api.Object{}
	for _, r := range rs {
		if !opts.Selector.Matches(r.labels) {
			continue
		}
		o, err := r.object()
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// getRow returns the stored row kind/name, or nil.
func getRow(ctx context.Context, q querier, kind, name string) (*row, error) {
	rows, err := q.Query(ctx, `SELECT `+rowColumns+` FROM objects WHERE kind = $1 AND name = $2`, kind, name)
	if err != nil {
		return nil, fmt.Errorf("pgstore: get %s/%s: %w", kind, name, mapErr(err))
	}
	r, err := pgx.CollectOneRow(rows, scanRow)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: get %s/%s: %w", kind, name, mapErr(err))
	}
	return r, nil
}

// kindOf returns obj's kind: its TypeMeta.Kind, which must agree with its
// Go type, or the kind of its Go type when TypeMeta.Kind is empty.
func kindOf(obj api.Object) (string, error) {
	if v := reflect.ValueOf(obj); obj == nil || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return "", fmt.Errorf("%w: nil object", store.ErrInvalid)
	}
	kind := obj.GetTypeMeta().Kind
	for _, k := range api.Kinds() {
		o, _ := api.New(k)
		if reflect.TypeOf(o) != reflect.TypeOf(obj) {
			continue
		}
		if kind == "" {
			return k, nil
		}
		if kind != k {
			return "", fmt.Errorf("%w: kind %q does not match the object's type %s", store.ErrInvalid, kind, k)
		}
		return k, nil
	}
	return "", fmt.Errorf("%w: unknown object type %T", store.ErrInvalid, obj)
}

func notFound(kind, name string) error {
	return fmt.Errorf("%s/%s: %w", kind, name, store.ErrNotFound)
}

// mapErr turns PostgreSQL errors into the store's errors.
func mapErr(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "23505": // unique_violation
		return fmt.Errorf("%w: %w", store.ErrAlreadyExists, err)
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case "22P05", "22021", "54000": // untranslatable character (\u0000 in JSONB), bad UTF-8, too large
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	return err
}
