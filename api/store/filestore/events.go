package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"weak"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// Events live in <dir>/events, one file per object:
// <kind>-<name>.jsonl (kind in lower case), one JSON api.Event a line,
// appended and fsynced one event at a time. When an object has more than
// store.MaxEventsPerObject events, its file is rewritten atomically with
// the newest ones. A crash in the middle of an append leaves a partial last
// line, which is cut off (with a warning) when the events are first read
// after Open.
//
// Events are cached in memory, read from the files on first use. The
// cache hangs off the Store in a side table (events are an optional
// capability and keep their state to themselves); one lock serialises
// event writes, which are rare next to object writes.

var _ store.Events = (*Store)(nil)

const (
	eventsDir = "events"
	eventsExt = ".jsonl"
)

// eventState is what a Store knows of its events. mu guards it.
type eventState struct {
	mu     sync.Mutex
	loaded bool
	byObj  map[string][]*api.Event // newest first, at most MaxEventsPerObject
	lines  map[string]int          // lines in each object's file
	ids    map[string]string       // event ID → object
}

// eventStates maps each Store (weakly: a closed, unreachable Store is
// collected, and its entry removed) to its eventState.
var eventStates sync.Map // weak.Pointer[Store] → *eventState

func (s *Store) events() *eventState {
	key := weak.Make(s)
	if v, ok := eventStates.Load(key); ok {
		return v.(*eventState)
	}
	v, loaded := eventStates.LoadOrStore(key, &eventState{})
	if !loaded {
		runtime.AddCleanup(s, func(k weak.Pointer[Store]) { eventStates.Delete(k) }, key)
	}
	return v.(*eventState)
}

// parseEventObject checks an event's object, "Kind/name".
func parseEventObject(object string) (kind, name string, err error) {
	kind, name, ok := strings.Cut(object, "/")
	if !ok {
		return "", "", fmt.Errorf("%w: event object %q: want Kind/name", store.ErrInvalid, object)
	}
	if err := store.CheckName(kind, name); err != nil {
		return "", "", fmt.Errorf("event object: %w", err)
	}
	return kind, name, nil
}

func (s *Store) eventPath(object string) string {
	kind, name, _ := strings.Cut(object, "/")
	return filepath.Join(s.dir, eventsDir, strings.ToLower(kind)+"-"+name+eventsExt)
}

// newerEvent orders events newest first: Time in whole seconds (nil
// oldest), then ID descending.
func newerEvent(a, b *api.Event) int {
	sec := func(e *api.Event) (int64, bool) {
		if e.Time == nil || e.Time.IsZero() {
			return 0, false
		}
		return e.Time.Unix(), true
	}
	sa, oka := sec(a)
	sb, okb := sec(b)
	switch {
	case oka != okb:
		if oka {
			return -1
		}
		return 1
	case sa != sb:
		if sa > sb {
			return -1
		}
		return 1
	}
	return -strings.Compare(a.ID, b.ID)
}

// cleanEvent returns the event as it is stored (strings as store.ValidText
// returns them, time in UTC whole seconds) and its JSON line.
func cleanEvent(e *api.Event) (*api.Event, []byte, error) {
	b, err := json.Marshal(e) // writes invalid UTF-8 as U+FFFD, byte by byte
	if err != nil {
		return nil, nil, fmt.Errorf("%w: event %s: %v", store.ErrInvalid, e.ID, err)
	}
	b = store.ReplaceJSONNul(b)
	var out api.Event
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, fmt.Errorf("filestore: copy event %s: %w", e.ID, err)
	}
	return &out, append(b, '\n'), nil
}

func copyEvent(e *api.Event) *api.Event {
	c := *e
	if e.Time != nil {
		t := *e.Time
		c.Time = &t
	}
	return &c
}

// load reads every event file. The caller holds st.mu.
func (s *Store) loadEvents(st *eventState) error {
	if st.loaded {
		return nil
	}
	st.byObj, st.lines, st.ids = map[string][]*api.Event{}, map[string]int{}, map[string]string{}
	dir := filepath.Join(s.dir, eventsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		ents, err = nil, nil
	}
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	for _, ent := range ents {
		if ent.IsDir() || !strings.HasSuffix(ent.Name(), eventsExt) {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		if n := len(data); n > 0 && data[n-1] != '\n' {
			keep := bytes.LastIndexByte(data, '\n') + 1
			s.log.Warn("filestore: cutting a torn last line off an event file", "file", path, "bytes", n-keep)
			if err := os.Truncate(path, int64(keep)); err != nil {
				return fmt.Errorf("filestore: %w", err)
			}
			data = data[:keep]
		}
		for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var e api.Event
			if err := json.Unmarshal(line, &e); err != nil {
				return fmt.Errorf("%s: line %d: %w: event: %v", path, i+1, store.ErrCorrupt, err)
			}
			if _, _, err := parseEventObject(e.Object); err != nil || e.ID == "" || s.eventPath(e.Object) != path {
				return fmt.Errorf("%s: line %d: %w: event %q of object %q does not belong here", path, i+1, store.ErrCorrupt, e.ID, e.Object)
			}
			st.lines[e.Object]++
			if _, taken := st.ids[e.ID]; taken {
				continue // written twice: keep the first
			}
			st.ids[e.ID] = e.Object
			st.byObj[e.Object] = append(st.byObj[e.Object], &e)
		}
	}
	for obj, es := range st.byObj {
		slices.SortStableFunc(es, newerEvent)
		st.byObj[obj] = st.dropOld(es)
	}
	st.loaded = true
	return nil
}

// dropOld returns es (newest first) cut to MaxEventsPerObject events,
// forgetting the IDs of those cut.
func (st *eventState) dropOld(es []*api.Event) []*api.Event {
	if len(es) <= store.MaxEventsPerObject {
		return es
	}
	for _, e := range es[store.MaxEventsPerObject:] {
		delete(st.ids, e.ID)
	}
	return slices.Clip(es[:store.MaxEventsPerObject])
}

// AddEvent implements store.Events: one append and fsync of the object's
// file, or, when the object then has more than store.MaxEventsPerObject
// events, an atomic rewrite of the file with the newest ones.
func (s *Store) AddEvent(ctx context.Context, e *api.Event) error {
	if e == nil {
		return fmt.Errorf("%w: no event", store.ErrInvalid)
	}
	if e.ID == "" {
		return fmt.Errorf("%w: event id is required", store.ErrInvalid)
	}
	if _, _, err := parseEventObject(e.Object); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed
	}
	c, line, err := cleanEvent(e)
	if err != nil {
		return err
	}
	st := s.events()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := s.loadEvents(st); err != nil {
		return err
	}
	if obj, taken := st.ids[c.ID]; taken {
		return fmt.Errorf("event %q (of %s): %w", c.ID, obj, store.ErrAlreadyExists)
	}
	if s.closed.Load() {
		return errClosed
	}
	es := st.byObj[c.Object]
	i, _ := slices.BinarySearchFunc(es, c, newerEvent)
	es = slices.Insert(es, i, c)
	path := s.eventPath(c.Object)
	if len(es) <= store.MaxEventsPerObject && st.lines[c.Object] < store.MaxEventsPerObject {
		if err := s.appendEvent(path, line); err != nil {
			st.loaded = false // read the file again next time
			return fmt.Errorf("filestore: add event %s: %w", c.ID, err)
		}
		st.lines[c.Object]++
	} else {
		kept := es[:min(len(es), store.MaxEventsPerObject)]
		var buf []byte
		for j := len(kept) - 1; j >= 0; j-- { // oldest first, as appended
			_, l, err := cleanEvent(kept[j])
			if err != nil {
				return err
			}
			buf = append(buf, l...)
		}
		if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		if err := writeAtomic(path, buf, statePerm); err != nil {
			st.loaded = false
			return fmt.Errorf("filestore: add event %s: %w", c.ID, err)
		}
		st.lines[c.Object] = len(kept)
	}
	st.ids[c.ID] = c.Object
	st.byObj[c.Object] = st.dropOld(es)
	return nil
}

// appendEvent appends one line to an event file and fsyncs it (and, for a
// new file, its directory).
func (s *Store) appendEvent(path string, line []byte) error {
	dir := filepath.Dir(path)
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	if created {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, statePerm)
	if err != nil {
		return err
	}
	_, err = f.Write(line)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && created {
		err = syncDir(dir)
	}
	return err
}

// ListEvents implements store.Events.
func (s *Store) ListEvents(ctx context.Context, object string, limit int) ([]*api.Event, error) {
	if object != "" {
		if _, _, err := parseEventObject(object); err != nil {
			return nil, err
		}
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	st := s.events()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := s.loadEvents(st); err != nil {
		return nil, err
	}
	var es []*api.Event
	if object != "" {
		es = st.byObj[object]
	} else {
		for _, l := range st.byObj {
			es = append(es, l...)
		}
		slices.SortFunc(es, newerEvent)
	}
	if limit > 0 && len(es) > limit {
		es = es[:limit]
	}
	out := make([]*api.Event, len(es))
	for i, e := range es {
		out[i] = copyEvent(e)
	}
	return out, nil
}
