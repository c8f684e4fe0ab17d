package filestore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// ErrLocked means another process holds the data directory.
var ErrLocked = errors.New("data directory is in use by another process")

// errClosed is returned by every method of a closed Store.
var errClosed = errors.New("filestore: store is closed")

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	logger          *slog.Logger
	debounce        time.Duration
	tolerateCorrupt bool
	watchBuffer     int
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithDebounce sets how long the spec directories must be quiet before
// hand edits are read (default 100ms). Tests set it short.
func WithDebounce(d time.Duration) Option { return func(o *options) { o.debounce = d } }

// TolerateCorrupt makes Open succeed despite files it cannot use: they are
// logged and listed by Problems, and their objects are not loaded until
// the files are fixed.
func TolerateCorrupt() Option { return func(o *options) { o.tolerateCorrupt = true } }

// WithWatchBuffer sets the capacity of each watcher's channel (default
// 1024): a watcher that falls further behind has its channel closed.
func WithWatchBuffer(n int) Option { return func(o *options) { o.watchBuffer = n } }

// Problem is a file the store could not use.
type Problem struct {
	// File is the file's path.
	File string `json:"file"`
	// Reason says what is wrong with it.
	Reason string `json:"reason"`
	// Time is when the problem was found.
	Time time.Time `json:"time"`
}

func (p Problem) String() string { return p.File + ": " + p.Reason }

// entry is one stored object. Entries are never changed once stored: a
// write replaces the entry, so readers may copy an entry's object without
// holding a lock.
type entry struct {
	obj      api.Object
	specHash string
	fileHash string
}

type ref struct{ kind, name string }

// Store is a store.Store kept in a directory of YAML files. See the package
// documentation for the layout and the handling of hand edits.
type Store struct {
	// Writes runs Create, Update, UpdateStatus and Delete each in a Txn.
	store.Writes

	dir  string
	opts options
	log  *slog.Logger
	lock *os.File

	// sem serialises transactions, token writes and hand-edit handling.
	// rv and every write to objs happen while it is held.
	sem chan struct{}
	rv  uint64

	mu       sync.RWMutex // guards the fields below
	objs     map[string]map[string]*entry
	tokens   map[string]store.Token
	problems map[string]Problem
	failed   error // a commit that could not be completed on disk

	rmu      sync.Mutex // guards rollouts and logs (the maps), serialises record writes
	rollouts map[string]*api.Rollout
	logs     map[string]*rolloutLog

	wmu      sync.Mutex // guards watchers
	watchers map[*watcher]struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	fsw       *fsnotify.Watcher
	stop      chan struct{}
	done      chan struct{}
}

// Open opens (creating it if needed) the data directory dir and loads every
// object into memory. It fails with ErrLocked if another process holds dir,
// and with an error wrapping store.ErrCorrupt naming every file it cannot
// use (unless TolerateCorrupt).
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{logger: slog.Default(), debounce: 100 * time.Millisecond, watchBuffer: 1024}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.watchBuffer < 1 {
		o.watchBuffer = 1
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	// The directory holds tokens and status: only its owner may enter.
	for _, k := range api.Kinds() {
		for _, d := range []string{dir, filepath.Join(dir, api.Resource(k)), filepath.Join(dir, api.Resource(k), stateDir)} {
			if err := os.MkdirAll(d, dirPerm); err != nil {
				return nil, fmt.Errorf("filestore: %w", err)
			}
			if err := os.Chmod(d, dirPerm); err != nil {
				return nil, fmt.Errorf("filestore: %w", err)
			}
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:      dir,
		opts:     o,
		log:      o.logger.With("store", dir),
		lock:     lock,
		sem:      make(chan struct{}, 1),
		objs:     map[string]map[string]*entry{},
		tokens:   map[string]store.Token{},
		problems: map[string]Problem{},
		watchers: map[*watcher]struct{}{},
		rollouts: map[string]*api.Rollout{},
		logs:     map[string]*rolloutLog{},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.Writes = store.Writes{Txn: s.Txn}
	fail := func(err error) (*Store, error) {
		if s.fsw != nil {
			s.fsw.Close()
		}
		unlockDir(lock)
		return nil, err
	}
	if err := s.recover(); err != nil {
		return fail(fmt.Errorf("filestore: recover %s: %w", dir, err))
	}
	// Watch before loading, so that no edit made during the load is
	// missed; events are handled once the load is done.
	if s.fsw, err = fsnotify.NewWatcher(); err != nil {
		return fail(fmt.Errorf("filestore: watch: %w", err))
	}
	for _, k := range api.Kinds() {
		if err := s.fsw.Add(s.kindDir(k)); err != nil {
			return fail(fmt.Errorf("filestore: watch %s: %w", s.kindDir(k), err))
		}
	}
	if err := s.load(); err != nil {
		return fail(err)
	}
	if err := s.loadTokens(); err != nil {
		return fail(err)
	}
	if err := s.loadRollouts(); err != nil {
		return fail(err)
	}
	if err := s.initSettings(); err != nil {
		return fail(err)
	}
	go s.watchFiles()
	return s, nil
}

func (s *Store) kindDir(kind string) string { return filepath.Join(s.dir, api.Resource(kind)) }

func (s *Store) specPath(kind, name string) string {
	return filepath.Join(s.dir, api.Resource(kind), name+specExt)
}

func (s *Store) statePath(kind, name string) string {
	return filepath.Join(s.dir, api.Resource(kind), stateDir, name+stateExt)
}

// recover rolls forward an interrupted commit and removes temporary files.
func (s *Store) recover() error {
	replayed, err := replayJournal(s.dir)
	if err != nil {
		return err
	}
	if replayed {
		s.log.Warn("filestore: completed a commit interrupted by a crash")
	}
	dirs := []string{s.dir}
	for _, k := range api.Kinds() {
		dirs = append(dirs, s.kindDir(k), filepath.Join(s.kindDir(k), stateDir))
	}
	for _, d := range dirs {
		if err := removeTemps(d); err != nil {
			return err
		}
	}
	return nil
}

// loaded is an object read at Open whose state file must be written or
// removed.
type loaded struct {
	kind, name string
	e          *entry
}

// load reads every object into memory.
func (s *Store) load() error {
	var (
		corrupt []Problem
		fresh   []loaded
		orphans []loaded
	)
	bad := func(path string, err error) {
		corrupt = append(corrupt, Problem{File: path, Reason: err.Error(), Time: time.Now()})
	}
	if data, err := os.ReadFile(filepath.Join(s.dir, rvFile)); err == nil {
		rv, err := parseRV(strings.TrimSpace(string(data)))
		if err != nil {
			bad(filepath.Join(s.dir, rvFile), err)
		}
		s.rv = max(s.rv, rv)
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("filestore: %w", err)
	}
	for _, kind := range api.Kinds() {
		s.objs[kind] = map[string]*entry{}
		ents, err := os.ReadDir(s.kindDir(kind))
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		specs := map[string]bool{}
		for _, de := range ents {
			if !isSpecFile(de.Name()) || de.IsDir() {
				continue
			}
			name := strings.TrimSuffix(de.Name(), specExt)
			specs[name] = true
			path := s.specPath(kind, name)
			l, err := s.readObject(kind, name)
			if err != nil {
				bad(path, err)
				// Its resourceVersion stays taken all the same.
				if st, err := readState(s.statePath(kind, name)); err == nil && st != nil {
					rv, _ := parseRV(st.ResourceVersion)
					s.rv = max(s.rv, rv)
				}
				continue
			}
			s.rv = max(s.rv, l.stateRV)
			if l.bumpRV {
				fresh = append(fresh, loaded{kind, name, l.e})
			}
			s.objs[kind][name] = l.e
		}
		// State files whose spec file is gone: the object was removed by
		// hand while the store was not running.
		states, err := os.ReadDir(filepath.Join(s.kindDir(kind), stateDir))
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		for _, de := range states {
			name, ok := strings.CutSuffix(de.Name(), stateExt)
			if !ok || strings.HasPrefix(name, ".") || specs[name] {
				continue
			}
			path := filepath.Join(s.kindDir(kind), stateDir, de.Name())
			if st, err := readState(path); err == nil && st != nil {
				rv, _ := parseRV(st.ResourceVersion)
				s.rv = max(s.rv, rv)
			}
			orphans = append(orphans, loaded{kind: kind, name: name})
		}
	}
	if len(corrupt) > 0 {
		if !s.opts.tolerateCorrupt {
			msgs := make([]string, len(corrupt))
			for i, p := range corrupt {
				msgs[i] = p.String()
			}
			return fmt.Errorf("filestore: open %s: %w: %s", s.dir, store.ErrCorrupt, strings.Join(msgs, "; "))
		}
		for _, p := range corrupt {
			s.problems[p.File] = p
			s.log.Error("filestore: cannot use file; its object is not loaded", "file", p.File, "reason", p.Reason)
		}
	}
	if len(orphans) > 0 {
		if err := s.writeRV(); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
	}
	for _, o := range orphans {
		if err := removeFile(s.statePath(o.kind, o.name)); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		s.log.Info("filestore: removed a state file without spec file (spec removed while stopped, or a create interrupted)", "kind", o.kind, "name", o.name)
	}
	// Objects new or edited while the store was not running get a
	// resourceVersion above every stored one, and their state is written.
	for _, f := range fresh {
		f.e.obj.GetObjectMeta().ResourceVersion = s.nextRV()
		s.log.Info("filestore: picked up a spec file new or changed while stopped", "kind", f.kind, "name", f.name,
			"generation", f.e.obj.GetObjectMeta().Generation)
		data, err := encodeState(f.e)
		if err == nil {
			err = writeAtomic(s.statePath(f.kind, f.name), data, statePerm)
		}
		if err != nil {
			return fmt.Errorf("filestore: write state of %s/%s: %w", f.kind, f.name, err)
		}
	}
	return nil
}

// readResult is an object read from its spec and state files.
type readResult struct {
	e *entry
	// bumpRV: the spec file is new or changed: the object needs a new
	// resourceVersion and its state file must be written.
	bumpRV  bool
	stateRV uint64
}

// readObject reads kind/name from disk. A spec file whose bytes are those
// the store recorded is trusted (decoded strictly, not re-validated); any
// other is treated as a hand edit.
func (s *Store) readObject(kind, name string) (readResult, error) {
	if r := api.ValidateName(name); r != "" {
		return readResult{}, fmt.Errorf("the file name is not a valid %s name: %s", kind, r)
	}
	data, err := os.ReadFile(s.specPath(kind, name))
	if err != nil {
		return readResult{}, err
	}
	st, err := readState(s.statePath(kind, name))
	if err != nil {
		return readResult{}, fmt.Errorf("state file %s: %w", s.statePath(kind, name), err)
	}
	fh := hashBytes(data)
	var obj api.Object
	trusted := false
	if st != nil && st.FileHash == fh {
		// The file the store wrote or accepted: the object is the spec it
		// recorded, which is the file's as written or, for a file a user
		// wrote, as defaulted.
		if obj, err = decodeSpec(kind, name, data); err != nil {
			return readResult{}, err
		}
		if hashSpec(obj) != st.SpecHash {
			obj.Default()
		}
		trusted = hashSpec(obj) == st.SpecHash
	}
	if !trusted {
		if obj, err = decodeHandEdited(kind, name, data); err != nil {
			return readResult{}, err
		}
	}
	e := &entry{obj: obj, specHash: hashSpec(obj), fileHash: fh}
	m := obj.GetObjectMeta()
	if st == nil {
		m.UID = newUID()
		m.Generation = 1
		m.CreationTimestamp = api.Now()
		return readResult{e: e, bumpRV: true}, nil
	}
	rv, _ := parseRV(st.ResourceVersion)
	m.UID, m.Generation, m.ResourceVersion, m.CreationTimestamp = st.UID, st.Generation, st.ResourceVersion, st.CreationTimestamp
	if len(st.Status) > 0 {
		if err := obj.SetStatusJSON(st.Status); err != nil {
			return readResult{}, fmt.Errorf("state file %s: status: %w", s.statePath(kind, name), err)
		}
	}
	r := readResult{e: e, stateRV: rv}
	if !trusted {
		// Changed by hand: labels may have changed too, so the object
		// gets a new resourceVersion even if its spec did not change.
		r.bumpRV = true
		if e.specHash != st.SpecHash {
			m.Generation++
		}
	}
	return r, nil
}

func parseRV(s string) (uint64, error) {
	rv, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resourceVersion %q is not a counter", s)
	}
	return rv, nil
}

// nextRV allocates a resourceVersion. The caller holds sem.
func (s *Store) nextRV() string {
	s.rv++
	return strconv.FormatUint(s.rv, 10)
}

// writeRV records the resourceVersion counter, so that it survives the
// deletion of the object holding the largest one. The caller holds sem.
func (s *Store) writeRV() error {
	return writeAtomic(filepath.Join(s.dir, rvFile), []byte(strconv.FormatUint(s.rv, 10)+"\n"), statePerm)
}

func newUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// acquire takes the transaction lock.
func (s *Store) acquire(ctx context.Context) error {
	select {
	case <-s.stop:
		return errClosed
	default:
	}
	select {
	case s.sem <- struct{}{}:
	case <-s.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-s.stop:
		<-s.sem
		return errClosed
	default:
		return nil
	}
}

func (s *Store) release() { <-s.sem }

// Get implements store.Reader.
func (s *Store) Get(ctx context.Context, kind, name string) (api.Object, error) {
	if err := store.CheckName(kind, name); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	s.mu.RLock()
	e := s.objs[kind][name]
	s.mu.RUnlock()
	if e == nil {
		return nil, notFound(kind, name)
	}
	return e.obj.DeepCopyObject(), nil
}

// List implements store.Reader.
func (s *Store) List(ctx context.Context, kind string, opts store.ListOptions) ([]api.Object, error) {
	if _, err := api.New(kind); err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	s.mu.RLock()
	es := make([]*entry, 0, len(s.objs[kind]))
	for _, e := range s.objs[kind] {
		if opts.Selector.Matches(e.obj.GetObjectMeta().Labels) {
			es = append(es, e)
		}
	}
	s.mu.RUnlock()
	return copySorted(es), nil
}

func copySorted(es []*entry) []api.Object {
	sort.Slice(es, func(i, j int) bool { return es[i].obj.GetObjectMeta().Name < es[j].obj.GetObjectMeta().Name })
	out := make([]api.Object, len(es))
	for i, e := range es {
		out[i] = e.obj.DeepCopyObject()
	}
	return out
}

func notFound(kind, name string) error {
	return fmt.Errorf("%s %q: %w", kind, name, store.ErrNotFound)
}

// Txn implements store.Store. Transactions run one at a time; fn must use
// tx, not the Store (whose methods would wait for fn to end). A commit
// writes its files before Txn returns and before its events are delivered.
func (s *Store) Txn(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	if err := s.broken(); err != nil {
		return err
	}
	t := &tx{s: s, changes: map[ref]*change{}}
	rv0 := s.rv
	committed := false
	defer func() {
		t.done = true
		if !committed {
			s.rv = rv0 // nothing of the transaction was written
		}
	}()
	err := fn(t)
	if err != nil && !errors.Is(err, store.ErrRollback) {
		return err
	}
	if cerr := t.written.Check(ctx, t); cerr != nil {
		return cerr
	}
	if err != nil {
		return err // rolled back
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ok, err := s.commit(t)
	committed = ok
	return err
}

// broken returns the error of a commit that could not be completed.
func (s *Store) broken() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.failed
}

// Ping implements store.Store. It fails when the store is closed, when a
// commit could not be completed on disk (the store must be reopened) or
// when the data directory is gone. Problems with hand-edited files do not
// make Ping fail: see Problems.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := s.broken(); err != nil {
		return err
	}
	if _, err := os.Stat(s.kindDir(api.KindDeployment)); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	return nil
}

// Problems returns the files the store could not use, sorted by file.
func (s *Store) Problems() []Problem {
	s.mu.RLock()
	ps := slices.Collect(maps.Values(s.problems))
	s.mu.RUnlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].File < ps[j].File })
	return ps
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Close stops watching files, waits for a running transaction, closes every
// watcher's channel and releases the data directory. Rollout writes in
// flight finish first.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		err = s.fsw.Close()
		<-s.done
		s.sem <- struct{}{} // wait for a running transaction; never released
		s.closed.Store(true)
		// Wait for rollout writes in flight; later ones see closed.
		s.rmu.Lock()
		for _, l := range s.logs {
			l.mu.Lock() // only waits for the holder: later writes see closed
			l.closed = true
			l.mu.Unlock()
		}
		s.rmu.Unlock()
		s.wmu.Lock()
		for w := range s.watchers {
			s.dropWatcher(w)
		}
		s.wmu.Unlock()
		err = errors.Join(err, unlockDir(s.lock))
	})
	return err
}
