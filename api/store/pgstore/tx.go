package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

type key struct{ kind, name string }

// tx is a store.Tx: a pgx transaction holding the write lock, with the
// rows it has read or written. Because no other writer can run until it
// ends, known[k] is exactly the current state of k (nil: absent); writes
// are kept in memory and sent as set-based statements by flush.
type tx struct {
	s    *Store
	pgtx pgx.Tx

	mu       sync.Mutex // fn may call tx from several goroutines
	finished bool

	now time.Time // the transaction's timestamp, for creationTimestamp
	// Resource versions reserved from the sequence: nextRV..lastRV are
	// free to hand out; the next reservation takes twice as many.
	nextRV, lastRV, block int64

	known    map[key]*row  // current state of every key looked up
	dbRV     map[key]int64 // resourceVersion in the database (0: absent), for keys in known
	dirty    []key         // keys whose known state differs from the database, in order
	isDirty  map[key]bool
	complete map[string]bool // every object of the kind is in known
	misses   map[string]int  // single-row lookups per kind
	events   []event
	// written is what the rules are checked for before the commit.
	written store.Written
}

type event struct {
	kind, name string
	typ        store.EventType
	object     []byte
}

// begin takes the write lock and reads the clock and a first resource
// version, in one round trip.
func (t *tx) begin(ctx context.Context) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, writeLockKey)
	b.Queue(`SELECT nextval('resource_versions'), now()`).QueryRow(func(r pgx.Row) error {
		return r.Scan(&t.nextRV, &t.now)
	})
	t.lastRV, t.block = t.nextRV, 1
	if err := t.pgtx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("pgstore: begin: %w", mapErr(err))
	}
	t.known = map[key]*row{}
	t.dbRV = map[key]int64{}
	t.isDirty = map[key]bool{}
	t.complete = map[string]bool{}
	t.misses = map[string]int{}
	return nil
}

func (t *tx) lock() error {
	t.mu.Lock()
	if t.finished {
		t.mu.Unlock()
		return errors.New("pgstore: transaction already finished")
	}
	return nil
}

// rv hands out the next resource version. Versions are reserved from the
// sequence (which is not transactional, so none is ever handed out twice,
// not even after a rollback or a dry run) in blocks that double, so that a
// transaction writing n objects needs about log2(n) round trips for them.
// Only holders of the write lock reserve versions, so they follow commit
// order.
func (t *tx) rv(ctx context.Context) (int64, error) {
	if t.nextRV > t.lastRV {
		n := 2 * t.block
		var last int64
		err := t.pgtx.QueryRow(ctx, `SELECT setval('resource_versions', nextval('resource_versions') + $1 - 1)`, n).Scan(&last)
		if err != nil {
			return 0, fmt.Errorf("pgstore: reserve resource versions: %w", mapErr(err))
		}
		t.nextRV, t.lastRV, t.block = last-n+1, last, n
	}
	v := t.nextRV
	t.nextRV++
	return v, nil
}

// lookup returns the current row of k, or nil when it does not exist.
func (t *tx) lookup(ctx context.Context, k key) (*row, error) {
	if r, ok := t.known[k]; ok {
		return r, nil
	}
	if t.complete[k.kind] {
		return nil, nil
	}
	t.misses[k.kind]++
	if t.misses[k.kind] > t.s.cfg.prefetchMiss {
		// Many single lookups (a large Apply): read the whole kind once.
		if err := t.loadKind(ctx, k.kind); err != nil {
			return nil, err
		}
		return t.known[k], nil
	}
	r, err := getRow(ctx, t.pgtx, k.kind, k.name)
	if err != nil {
		return nil, err
	}
	t.known[k] = r
	t.dbRV[k] = rvOf(r)
	return r, nil
}

func (t *tx) loadKind(ctx context.Context, kind string) error {
	rows, err := t.pgtx.Query(ctx, `SELECT `+rowColumns+` FROM objects WHERE kind = $1`, kind)
	if err != nil {
		return fmt.Errorf("pgstore: load %s: %w", kind, mapErr(err))
	}
	rs, err := pgx.CollectRows(rows, scanRow)
	if err != nil {
		return fmt.Errorf("pgstore: load %s: %w", kind, mapErr(err))
	}
	for _, r := range rs {
		k := key{kind, r.name}
		if _, ok := t.known[k]; !ok {
			t.known[k] = r
			t.dbRV[k] = r.rv
		}
	}
	t.complete[kind] = true
	return nil
}

func rvOf(r *row) int64 {
	if r == nil {
		return 0
	}
	return r.rv
}

// set records the new state of k (nil: deleted) and its event.
func (t *tx) set(k key, r *row, typ store.EventType, ev *row) error {
	j, err := ev.eventJSON()
	if err != nil {
		return fmt.Errorf("pgstore: encode event: %w", err)
	}
	t.known[k] = r
	if !t.isDirty[k] {
		t.isDirty[k] = true
		t.dirty = append(t.dirty, k)
	}
	t.events = append(t.events, event{kind: k.kind, name: k.name, typ: typ, object: j})
	return nil
}

// objectKey checks obj's kind and name.
func objectKey(obj api.Object) (key, error) {
	kind, err := kindOf(obj)
	if err != nil {
		return key{}, err
	}
	name := obj.GetObjectMeta().Name
	if err := store.CheckName(kind, name); err != nil {
		return key{}, err
	}
	return key{kind, name}, nil
}

// checkRV returns ErrConflict unless want is empty or names cur's version.
func checkRV(k key, cur *row, want string) error {
	if want == "" || want == strconv.FormatInt(cur.rv, 10) {
		return nil
	}
	return fmt.Errorf("%s/%s: resourceVersion %s, stored %d: %w", k.kind, k.name, want, cur.rv, store.ErrConflict)
}

// Get implements store.Reader.
func (t *tx) Get(ctx context.Context, kind, name string) (api.Object, error) {
	if err := store.CheckName(kind, name); err != nil {
		return nil, err
	}
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	r, err := t.lookup(ctx, key{kind, name})
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, notFound(kind, name)
	}
	return r.object()
}

// List implements store.Reader: pending writes are sent first, so the
// database answers with them.
func (t *tx) List(ctx context.Context, kind string, opts store.ListOptions) ([]api.Object, error) {
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return list(ctx, t.pgtx, kind, opts)
}

// Create implements store.Writer.
func (t *tx) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	k, err := objectKey(obj)
	if err != nil {
		return nil, err
	}
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	cur, err := t.lookup(ctx, k)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("%s/%s: %w", k.kind, k.name, store.ErrAlreadyExists)
	}
	rv, err := t.rv(ctx)
	if err != nil {
		return nil, err
	}
	m := obj.GetObjectMeta()
	r := &row{
		kind: k.kind, name: k.name,
		uid:        newUID(),
		generation: 1,
		rv:         rv,
		labels:     copyMap(m.Labels),
		annots:     copyMap(m.Annotations),
		spec:       obj.SpecJSON(),
		status:     obj.StatusJSON(),
		created:    t.now.UTC().Truncate(time.Second),
	}
	if err := t.set(k, r, store.Added, r); err != nil {
		return nil, err
	}
	t.written.Add(k.kind, k.name)
	return r.object()
}

// Update implements store.Writer.
func (t *tx) Update(ctx context.Context, obj api.Object) (api.Object, error) {
	k, err := objectKey(obj)
	if err != nil {
		return nil, err
	}
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	cur, err := t.existing(ctx, k, obj.GetObjectMeta().ResourceVersion)
	if err != nil {
		return nil, err
	}
	curObj, err := cur.object()
	if err != nil {
		return nil, err
	}
	// Compared as canonical JSON (JSONB would reorder keys).
	specChanged, metaChanged := store.Changed(curObj, obj)
	if !specChanged && !metaChanged {
		return curObj, nil
	}
	n := *cur
	m := obj.GetObjectMeta()
	n.labels, n.annots = copyMap(m.Labels), copyMap(m.Annotations)
	if specChanged {
		n.spec = obj.SpecJSON()
		n.generation++
		t.written.Add(k.kind, k.name)
	}
	if n.rv, err = t.rv(ctx); err != nil {
		return nil, err
	}
	if err := t.set(k, &n, store.Modified, &n); err != nil {
		return nil, err
	}
	return n.object()
}

// UpdateStatus implements store.Writer.
func (t *tx) UpdateStatus(ctx context.Context, obj api.Object) (api.Object, error) {
	k, err := objectKey(obj)
	if err != nil {
		return nil, err
	}
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	cur, err := t.existing(ctx, k, obj.GetObjectMeta().ResourceVersion)
	if err != nil {
		return nil, err
	}
	curObj, err := cur.object()
	if err != nil {
		return nil, err
	}
	status := obj.StatusJSON()
	if api.Equal(curObj.StatusJSON(), status) {
		return curObj, nil
	}
	n := *cur
	n.status = status
	if n.rv, err = t.rv(ctx); err != nil {
		return nil, err
	}
	if err := t.set(k, &n, store.Modified, &n); err != nil {
		return nil, err
	}
	return n.object()
}

// Delete implements store.Writer.
func (t *tx) Delete(ctx context.Context, kind, name, resourceVersion string) error {
	if err := store.CheckName(kind, name); err != nil {
		return err
	}
	if err := t.lock(); err != nil {
		return err
	}
	defer t.mu.Unlock()
	k := key{kind, name}
	cur, err := t.existing(ctx, k, resourceVersion)
	if err != nil {
		return err
	}
	return t.set(k, nil, store.Deleted, cur)
}

// existing returns the stored row of k for a write whose precondition is
// resourceVersion (empty: none): ErrNotFound when there is no such object,
// ErrConflict when it changed. The caller holds t.mu.
func (t *tx) existing(ctx context.Context, k key, resourceVersion string) (*row, error) {
	cur, err := t.lookup(ctx, k)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, notFound(k.kind, k.name)
	}
	if err := checkRV(k, cur, resourceVersion); err != nil {
		return nil, err
	}
	return cur, nil
}

// flush sends the pending writes and events in one round trip: one INSERT
// for new objects, one UPDATE and one DELETE that also check the
// resourceVersion the transaction read (a mismatch, impossible while every
// writer takes the write lock, is reported as ErrConflict), one INSERT of
// the events in order, and the notification (sent by PostgreSQL at commit).
func (t *tx) flush(ctx context.Context) error {
	if len(t.dirty) == 0 && len(t.events) == 0 {
		return nil
	}
	var ins, upd rowArrays
	var delKinds, delNames []string
	var delRVs []int64
	for _, k := range t.dirty {
		r, was := t.known[k], t.dbRV[k]
		switch {
		case r != nil && was == 0:
			ins.add(r, 0)
		case r != nil:
			upd.add(r, was)
		case was != 0:
			delKinds, delNames, delRVs = append(delKinds, k.kind), append(delNames, k.name), append(delRVs, was)
		}
	}
	b := &pgx.Batch{}
	if len(delKinds) > 0 {
		n := len(delKinds)
		b.Queue(`DELETE FROM objects o USING unnest($1::text[], $2::text[], $3::bigint[]) AS d(kind, name, rv)
			WHERE o.kind = d.kind AND o.name = d.name AND o.resource_version = d.rv`,
			delKinds, delNames, delRVs).Exec(func(tag pgconn.CommandTag) error { return expectRows(tag, n) })
	}
	if n := len(upd.kinds); n > 0 {
		b.Queue(`UPDATE objects o SET uid = u.uid, generation = u.generation, resource_version = u.rv,
				labels = u.labels::jsonb, annotations = u.annotations::jsonb, spec = u.spec::jsonb,
				status = u.status::jsonb, created_at = u.created_at
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::timestamptz[], $11::bigint[])
				AS u(kind, name, uid, generation, rv, labels, annotations, spec, status, created_at, prev)
			WHERE o.kind = u.kind AND o.name = u.name AND o.resource_version = u.prev`,
			upd.args()...).Exec(func(tag pgconn.CommandTag) error { return expectRows(tag, n) })
	}
	if len(ins.kinds) > 0 {
		b.Queue(`INSERT INTO objects (`+rowColumns+`)
			SELECT kind, name, uid, generation, rv, labels::jsonb, annotations::jsonb, spec::jsonb, status::jsonb, created_at
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::timestamptz[], $11::bigint[])
				AS u(kind, name, uid, generation, rv, labels, annotations, spec, status, created_at, prev)`,
			ins.args()...)
	}
	if len(t.events) > 0 {
		n := len(t.events)
		kinds, names, types, objs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, e := range t.events {
			kinds[i], names[i], types[i], objs[i] = e.kind, e.name, string(e.typ), string(e.object)
		}
		// Ids follow the order of the array (WITH ORDINALITY … ORDER BY).
		b.Queue(`INSERT INTO events (kind, name, type, object)
			SELECT kind, name, type, object::jsonb
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS e(kind, name, type, object, i)
			ORDER BY i`, kinds, names, types, objs)
		b.Queue(`SELECT pg_notify($1, '')`, channel)
	}
	if err := t.pgtx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("pgstore: write: %w", mapErr(err))
	}
	for _, k := range t.dirty {
		t.dbRV[k] = rvOf(t.known[k])
		delete(t.isDirty, k)
	}
	t.dirty = t.dirty[:0]
	t.events = t.events[:0]
	return nil
}

// rowArrays holds rows as the column arrays of an unnest().
type rowArrays struct {
	kinds, names, uids              []string
	gens, rvs, prevs                []int64
	labels, annots, specs, statuses []string
	created                         []time.Time
}

func (u *rowArrays) add(r *row, prev int64) {
	u.kinds = append(u.kinds, r.kind)
	u.names = append(u.names, r.name)
	u.uids = append(u.uids, r.uid)
	u.gens = append(u.gens, r.generation)
	u.rvs = append(u.rvs, r.rv)
	u.labels = append(u.labels, mapJSON(r.labels))
	u.annots = append(u.annots, mapJSON(r.annots))
	u.specs = append(u.specs, string(r.spec))
	u.statuses = append(u.statuses, string(r.status))
	u.created = append(u.created, r.created)
	u.prevs = append(u.prevs, prev)
}

func (u *rowArrays) args() []any {
	return []any{u.kinds, u.names, u.uids, u.gens, u.rvs, u.labels, u.annots, u.specs, u.statuses, u.created, u.prevs}
}

// expectRows reports a write that found fewer rows than it should have: the
// resourceVersion read earlier in the transaction is no longer stored.
func expectRows(tag pgconn.CommandTag, n int) error {
	if got := tag.RowsAffected(); got != int64(n) {
		return fmt.Errorf("%d of %d rows changed concurrently: %w", int64(n)-got, n, store.ErrConflict)
	}
	return nil
}
