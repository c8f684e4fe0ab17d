package filestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// watchFiles collects fsnotify events for spec files and, once the
// directories have been quiet for the debounce period (or events have kept
// coming for ten periods), reconciles the files they name.
func (s *Store) watchFiles() {
	defer close(s.done)
	pending := map[string]bool{}
	var first time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	mark := func(path string) {
		now := time.Now()
		if len(pending) == 0 {
			first = now
		}
		pending[path] = true
		wait := s.opts.debounce
		if left := first.Add(10 * s.opts.debounce).Sub(now); left < wait {
			wait = max(left, 0)
		}
		timer.Reset(wait)
	}
	for {
		select {
		case <-s.stop:
			return
		case ev, ok := <-s.fsw.Events:
			if !ok {
				return
			}
			if _, ok := s.kindOf(ev.Name); ok {
				mark(ev.Name)
			}
		case err, ok := <-s.fsw.Errors:
			if !ok {
				return
			}
			s.log.Error("filestore: watching spec files", "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				for _, p := range s.allSpecPaths() {
					mark(p)
				}
			}
		case <-timer.C:
			paths := make([]string, 0, len(pending))
			for p := range pending {
				paths = append(paths, p)
			}
			clear(pending)
			sort.Strings(paths)
			s.reconcileFiles(paths)
		}
	}
}

// kindOf returns the kind whose spec files live where path is, if path
// names a spec file.
func (s *Store) kindOf(path string) (string, bool) {
	if !isSpecFile(filepath.Base(path)) {
		return "", false
	}
	dir := filepath.Dir(path)
	for _, k := range api.Kinds() {
		if dir == s.kindDir(k) {
			return k, true
		}
	}
	return "", false
}

// allSpecPaths lists every spec file on disk and every object in memory.
func (s *Store) allSpecPaths() []string {
	var paths []string
	s.mu.RLock()
	for kind, objs := range s.objs {
		for name := range objs {
			paths = append(paths, s.specPath(kind, name))
		}
	}
	s.mu.RUnlock()
	for _, k := range api.Kinds() {
		ents, _ := os.ReadDir(s.kindDir(k))
		for _, e := range ents {
			paths = append(paths, filepath.Join(s.kindDir(k), e.Name()))
		}
	}
	return paths
}

// unchanged reports whether path holds what the store last wrote or
// accepted for its object. It reads without the transaction lock: a file
// that looks changed is read again under it.
func (s *Store) unchanged(kind, path string) bool {
	data, err := os.ReadFile(path)
	name := strings.TrimSuffix(filepath.Base(path), specExt)
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.objs[kind][name]
	_, problem := s.problems[path]
	if err != nil {
		return e == nil && !problem && errors.Is(err, fs.ErrNotExist)
	}
	return e != nil && !problem && hashBytes(data) == e.fileHash
}

// reconcileFiles brings memory in line with the spec files at paths.
func (s *Store) reconcileFiles(paths []string) {
	var changed []string
	for _, p := range paths {
		if kind, ok := s.kindOf(p); ok && !s.unchanged(kind, p) {
			changed = append(changed, p)
		}
	}
	if len(changed) == 0 {
		return
	}
	select {
	case s.sem <- struct{}{}:
	case <-s.stop:
		return
	}
	defer s.release()
	if err := s.broken(); err != nil {
		return
	}
	var events []store.Event
	for _, p := range changed {
		kind, _ := s.kindOf(p)
		ev, err := s.reconcileFile(kind, p)
		if err != nil {
			s.setProblem(p, err)
			continue
		}
		s.clearProblem(p)
		if ev != nil {
			events = append(events, *ev)
		}
	}
	s.publish(events)
}

func (s *Store) setProblem(path string, err error) {
	s.mu.Lock()
	old, had := s.problems[path]
	if !had || old.Reason != err.Error() {
		s.problems[path] = Problem{File: path, Reason: err.Error(), Time: time.Now()}
	}
	s.mu.Unlock()
	if !had || old.Reason != err.Error() {
		s.log.Error("filestore: cannot use hand-edited file; keeping the last good object", "file", path, "reason", err.Error())
	}
}

func (s *Store) clearProblem(path string) {
	s.mu.Lock()
	_, had := s.problems[path]
	delete(s.problems, path)
	s.mu.Unlock()
	if had {
		s.log.Info("filestore: file problem resolved", "file", path)
	}
}

// reconcileFile takes in the hand edit of one spec file and returns the
// event it causes, if any. The caller holds sem.
func (s *Store) reconcileFile(kind, path string) (*store.Event, error) {
	name := strings.TrimSuffix(filepath.Base(path), specExt)
	cur := s.objs[kind][name]
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if cur == nil {
			return nil, nil
		}
		// Removed by hand: the object goes, with its state.
		if err := s.writeRV(); err != nil {
			return nil, err
		}
		state := s.statePath(kind, name)
		if err := removeFile(state); err != nil {
			return nil, err
		}
		if err := syncDir(filepath.Dir(state)); err != nil {
			return nil, err
		}
		s.mu.Lock()
		delete(s.objs[kind], name)
		s.mu.Unlock()
		s.log.Info("filestore: spec file removed by hand; object deleted", "kind", kind, "name", name)
		return &store.Event{Type: store.Deleted, Object: cur.obj}, nil
	}
	if err != nil {
		return nil, err
	}
	fh := hashBytes(data)
	if cur != nil && fh == cur.fileHash {
		return nil, nil // what the store wrote (or back to it)
	}
	var (
		e  *entry
		ev store.EventType
	)
	if cur == nil {
		// A new file, or one that had a problem at Open: its state file,
		// if any, keeps uid, generation and status.
		r, err := s.readObject(kind, name)
		if err != nil {
			return nil, err
		}
		r.e.obj.GetObjectMeta().ResourceVersion = s.nextRV()
		e, ev = r.e, store.Added
	} else {
		obj, err := decodeHandEdited(kind, name, data)
		if err != nil {
			return nil, err
		}
		e = &entry{obj: obj, specHash: hashSpec(obj), fileHash: fh}
		specChanged, metaChanged := store.Changed(cur.obj, obj)
		m := copyMeta(*cur.obj.GetObjectMeta())
		m.Labels, m.Annotations = obj.GetObjectMeta().Labels, obj.GetObjectMeta().Annotations
		if specChanged {
			m.Generation++
		}
		if specChanged || metaChanged {
			m.ResourceVersion = s.nextRV()
			ev = store.Modified
		}
		*obj.GetObjectMeta() = m
		if err := obj.SetStatusJSON(cur.obj.StatusJSON()); err != nil {
			return nil, err
		}
	}
	data, err = encodeState(e)
	if err == nil {
		err = writeAtomic(s.statePath(kind, name), data, statePerm)
	}
	if err != nil {
		return nil, fmt.Errorf("write state: %w", err)
	}
	s.mu.Lock()
	s.objs[kind][name] = e
	s.mu.Unlock()
	if ev == "" {
		return nil, nil // formatting or comments only
	}
	m := e.obj.GetObjectMeta()
	s.log.Info("filestore: picked up hand edit", "kind", kind, "name", name, "event", ev,
		"generation", m.Generation, "resourceVersion", m.ResourceVersion)
	return &store.Event{Type: ev, Object: e.obj}, nil
}
