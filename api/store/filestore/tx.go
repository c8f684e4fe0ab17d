package filestore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// change is a staged write of one object.
type change struct {
	e *entry // nil: deleted
	// spec and state say which files must be written.
	spec, state bool
}

// tx is a transaction: writes are staged in changes and written by commit.
// Every method runs while the Store's sem is held.
type tx struct {
	s       *Store
	changes map[ref]*change
	order   []ref // in order of first change
	events  []store.Event
	done    bool
	// written is what the rules are checked for before the commit.
	written store.Written
}

var errTxDone = errors.New("filestore: transaction already ended")

func (t *tx) lookup(r ref) *entry {
	if c, ok := t.changes[r]; ok {
		return c.e
	}
	// objs is written only while sem is held, which the caller holds.
	return t.s.objs[r.kind][r.name]
}

func (t *tx) stage(r ref, e *entry, spec, state bool) {
	c, ok := t.changes[r]
	if !ok {
		t.order = append(t.order, r)
		t.changes[r] = &change{e: e, spec: spec, state: state}
		return
	}
	if c.e == nil || e == nil {
		c.spec, c.state = spec, state
	} else {
		c.spec, c.state = c.spec || spec, c.state || state
	}
	c.e = e
}

// identify checks obj and returns its kind and name.
func identify(obj api.Object) (string, string, error) {
	if v := reflect.ValueOf(obj); obj == nil || v.Kind() == reflect.Pointer && v.IsNil() {
		return "", "", fmt.Errorf("%w: no object", store.ErrInvalid)
	}
	kind, name := obj.GetTypeMeta().Kind, obj.GetObjectMeta().Name
	if kind == "" {
		// An empty kind is taken from the type.
		for _, k := range api.Kinds() {
			if o, _ := api.New(k); reflect.TypeOf(o) == reflect.TypeOf(obj) {
				kind = k
			}
		}
	}
	if err := store.CheckName(kind, name); err != nil {
		return "", "", err
	}
	if want, _ := api.New(kind); reflect.TypeOf(want) != reflect.TypeOf(obj) {
		return "", "", fmt.Errorf("%w: a %T cannot be of kind %s", store.ErrInvalid, obj, kind)
	}
	return kind, name, nil
}

func checkRV(kind, name string, cur *entry, rv string) error {
	if rv != "" && rv != cur.obj.GetObjectMeta().ResourceVersion {
		return fmt.Errorf("%s %q: resourceVersion %s is not the stored %s: %w",
			kind, name, rv, cur.obj.GetObjectMeta().ResourceVersion, store.ErrConflict)
	}
	return nil
}

// copyMeta returns m with its own maps and timestamp.
func copyMeta(m api.ObjectMeta) api.ObjectMeta {
	m.Labels = nonEmpty(maps.Clone(m.Labels))
	m.Annotations = nonEmpty(maps.Clone(m.Annotations))
	if m.CreationTimestamp != nil {
		ct := *m.CreationTimestamp
		m.CreationTimestamp = &ct
	}
	return m
}

// Get implements store.Reader.
func (t *tx) Get(ctx context.Context, kind, name string) (api.Object, error) {
	if err := store.CheckName(kind, name); err != nil {
		return nil, err
	}
	if t.done {
		return nil, errTxDone
	}
	e := t.lookup(ref{kind, name})
	if e == nil {
		return nil, notFound(kind, name)
	}
	return e.obj.DeepCopyObject(), nil
}

// List implements store.Reader.
func (t *tx) List(ctx context.Context, kind string, opts store.ListOptions) ([]api.Object, error) {
	if _, err := api.New(kind); err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	if t.done {
		return nil, errTxDone
	}
	var es []*entry
	keep := func(e *entry) {
		if e != nil && opts.Selector.Matches(e.obj.GetObjectMeta().Labels) {
			es = append(es, e)
		}
	}
	for name, e := range t.s.objs[kind] {
		if _, staged := t.changes[ref{kind, name}]; !staged {
			keep(e)
		}
	}
	for r, c := range t.changes {
		if r.kind == kind {
			keep(c.e)
		}
	}
	return copySorted(es), nil
}

// Create implements store.Writer.
func (t *tx) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	kind, name, err := identify(obj)
	if err != nil {
		return nil, err
	}
	if t.done {
		return nil, errTxDone
	}
	r := ref{kind, name}
	if t.lookup(r) != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, name, store.ErrAlreadyExists)
	}
	m := copyMeta(api.ObjectMeta{
		Name:        name,
		Labels:      obj.GetObjectMeta().Labels,
		Annotations: obj.GetObjectMeta().Annotations,
	})
	m.UID = newUID()
	m.Generation = 1
	m.ResourceVersion = t.s.nextRV()
	m.CreationTimestamp = api.Now()
	n, err := api.Assemble(kind, m, obj.SpecJSON(), obj.StatusJSON())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	t.stage(r, &entry{obj: n, specHash: hashSpec(n)}, true, true)
	t.events = append(t.events, store.Event{Type: store.Added, Object: n})
	t.written.Add(kind, name)
	return n.DeepCopyObject(), nil
}

// Update implements store.Writer.
func (t *tx) Update(ctx context.Context, obj api.Object) (api.Object, error) {
	kind, name, err := identify(obj)
	if err != nil {
		return nil, err
	}
	r := ref{kind, name}
	cur, err := t.existing(r, obj.GetObjectMeta().ResourceVersion)
	if err != nil {
		return nil, err
	}
	specChanged, metaChanged := store.Changed(cur.obj, obj)
	if !specChanged && !metaChanged {
		return cur.obj.DeepCopyObject(), nil
	}
	m := copyMeta(*cur.obj.GetObjectMeta())
	m.Labels = nonEmpty(maps.Clone(obj.GetObjectMeta().Labels))
	m.Annotations = nonEmpty(maps.Clone(obj.GetObjectMeta().Annotations))
	m.ResourceVersion = t.s.nextRV()
	spec := cur.obj.SpecJSON()
	if specChanged {
		m.Generation++
		spec = obj.SpecJSON()
		t.written.Add(kind, name)
	}
	n, err := api.Assemble(kind, m, spec, cur.obj.StatusJSON())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	t.stage(r, &entry{obj: n, specHash: hashSpec(n)}, true, true)
	t.events = append(t.events, store.Event{Type: store.Modified, Object: n})
	return n.DeepCopyObject(), nil
}

// UpdateStatus implements store.Writer.
func (t *tx) UpdateStatus(ctx context.Context, obj api.Object) (api.Object, error) {
	kind, name, err := identify(obj)
	if err != nil {
		return nil, err
	}
	r := ref{kind, name}
	cur, err := t.existing(r, obj.GetObjectMeta().ResourceVersion)
	if err != nil {
		return nil, err
	}
	status := obj.StatusJSON()
	if api.Equal(cur.obj.StatusJSON(), status) {
		return cur.obj.DeepCopyObject(), nil
	}
	m := copyMeta(*cur.obj.GetObjectMeta())
	m.ResourceVersion = t.s.nextRV()
	n, err := api.Assemble(kind, m, cur.obj.SpecJSON(), status)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	t.stage(r, &entry{obj: n, specHash: cur.specHash, fileHash: cur.fileHash}, false, true)
	t.events = append(t.events, store.Event{Type: store.Modified, Object: n})
	return n.DeepCopyObject(), nil
}

// Delete implements store.Writer.
func (t *tx) Delete(ctx context.Context, kind, name, resourceVersion string) error {
	if err := store.CheckName(kind, name); err != nil {
		return err
	}
	r := ref{kind, name}
	cur, err := t.existing(r, resourceVersion)
	if err != nil {
		return err
	}
	t.stage(r, nil, false, false)
	t.events = append(t.events, store.Event{Type: store.Deleted, Object: cur.obj})
	return nil
}

// existing returns the current entry of r for a write whose precondition
// is resourceVersion (empty: none): ErrNotFound when there is no such
// object, ErrConflict when it changed.
func (t *tx) existing(r ref, resourceVersion string) (*entry, error) {
	if t.done {
		return nil, errTxDone
	}
	cur := t.lookup(r)
	if cur == nil {
		return nil, notFound(r.kind, r.name)
	}
	if err := checkRV(r.kind, r.name, cur, resourceVersion); err != nil {
		return nil, err
	}
	return cur, nil
}

// commit writes the transaction's files, updates the cache and delivers
// the events. It reports whether the transaction took effect: false means
// nothing was changed. An error with true means the commit took effect in
// memory but its files could not all be renamed: the store refuses further
// writes, and Open recovers (rolling the journal forward, or, for one
// object, reading whichever files made it).
func (s *Store) commit(t *tx) (bool, error) {
	if len(t.order) == 0 {
		return true, nil
	}
	// A step renames w's temporary file over w.path, or removes path.
	type step struct {
		w      *pendingWrite
		remove string
	}
	var (
		groups  [][]*pendingWrite
		steps   []step
		deletes bool
		objects int // objects whose files change
	)
	for _, r := range t.order {
		c := t.changes[r]
		old := s.objs[r.kind][r.name]
		spec, state := s.specPath(r.kind, r.name), s.statePath(r.kind, r.name)
		if c.e == nil {
			if old != nil {
				// Spec first: a crash in between leaves a state file
				// without spec, which Open removes.
				steps = append(steps, step{remove: spec}, step{remove: state})
				deletes = true
				objects++
			}
			continue
		}
		objects++
		e := c.e
		var sw, tw *pendingWrite
		if c.spec {
			sw = &pendingWrite{path: spec, perm: specPerm, encode: func() ([]byte, error) {
				data, err := encodeSpec(e.obj)
				e.fileHash = hashBytes(data) // before the state, which records it
				return data, err
			}}
		}
		if c.state {
			tw = &pendingWrite{path: state, perm: statePerm, encode: func() ([]byte, error) { return encodeState(e) }}
		}
		var g []*pendingWrite
		for _, w := range []*pendingWrite{sw, tw} {
			if w != nil {
				g = append(g, w)
			}
		}
		groups = append(groups, g)
		// For a new object the state goes first (a crash in between leaves
		// a state file without spec: no object); for an existing one the
		// spec goes first (a crash in between leaves a changed spec file,
		// which Open takes as an edit: a new generation).
		first, second := sw, tw
		if old == nil {
			first, second = tw, sw
		}
		for _, w := range []*pendingWrite{first, second} {
			if w != nil {
				steps = append(steps, step{w: w})
			}
		}
	}
	if err := writeTemps(groups); err != nil {
		return false, fmt.Errorf("filestore: commit: %w", err)
	}
	ops := make([]fileOp, len(steps))
	for i, st := range steps {
		if st.w != nil {
			ops[i] = fileOp{From: st.w.tmp, To: st.w.path}
		} else {
			ops[i] = fileOp{To: st.remove}
		}
	}
	cleanup := func() {
		for _, st := range steps {
			if st.w != nil {
				removeFile(st.w.tmp)
			}
		}
	}
	// A higher counter is always safe, so it is written before anything.
	if deletes {
		if err := s.writeRV(); err != nil {
			cleanup()
			return false, fmt.Errorf("filestore: commit: %w", err)
		}
	}
	if objects > 1 {
		if err := writeJournal(s.dir, ops); err != nil {
			cleanup()
			removeFile(filepath.Join(s.dir, journalFile))
			return false, fmt.Errorf("filestore: commit: journal: %w", err)
		}
	}
	// From here on the transaction has happened.
	err := applyOps(s.dir, ops)
	if err == nil && objects > 1 {
		if err = removeFile(filepath.Join(s.dir, journalFile)); err == nil {
			err = syncDir(s.dir)
		}
	}
	s.mu.Lock()
	if err != nil {
		err = fmt.Errorf("filestore: commit could not be completed on disk; reopen the store to recover: %w", err)
		s.failed = err
	}
	for _, r := range t.order {
		c := t.changes[r]
		if c.e == nil {
			delete(s.objs[r.kind], r.name)
		} else {
			s.objs[r.kind][r.name] = c.e
		}
		if c.spec || c.e == nil {
			if _, had := s.problems[s.specPath(r.kind, r.name)]; had {
				s.log.Warn("filestore: a write replaced a spec file that had a problem", "file", s.specPath(r.kind, r.name))
				delete(s.problems, s.specPath(r.kind, r.name))
			}
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("filestore: commit failed", "err", err)
	}
	s.publish(t.events)
	return true, err
}
