package filestore

import (
	"context"
	"fmt"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// watcher is one Watch call.
type watcher struct {
	kind string
	ch   chan store.Event
	gone chan struct{} // closed when the watcher is dropped
}

// Watch implements store.Store. Events are delivered in commit order on a
// channel buffered to WithWatchBuffer; a watcher whose buffer is full is
// dropped and its channel closed, so the caller re-lists and watches again.
// The channel is also closed when ctx ends or the store is closed.
func (s *Store) Watch(ctx context.Context, opts store.WatchOptions) (<-chan store.Event, error) {
	if opts.Kind != "" {
		if _, err := api.New(opts.Kind); err != nil {
			return nil, fmt.Errorf("%w: %v", store.ErrInvalid, err)
		}
	}
	w := &watcher{kind: opts.Kind, ch: make(chan store.Event, s.opts.watchBuffer), gone: make(chan struct{})}
	s.wmu.Lock()
	if s.closed.Load() {
		s.wmu.Unlock()
		return nil, errClosed
	}
	s.watchers[w] = struct{}{}
	s.wmu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			s.wmu.Lock()
			s.dropWatcher(w)
			s.wmu.Unlock()
		case <-w.gone:
		}
	}()
	return w.ch, nil
}

// dropWatcher closes w's channel. The caller holds wmu.
func (s *Store) dropWatcher(w *watcher) {
	if _, ok := s.watchers[w]; !ok {
		return
	}
	delete(s.watchers, w)
	close(w.ch)
	close(w.gone)
}

// publish delivers committed events, each watcher getting its own copies.
// The caller holds sem, so events go out in commit order.
func (s *Store) publish(events []store.Event) {
	if len(events) == 0 {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, ev := range events {
		for w := range s.watchers {
			if w.kind != "" && w.kind != ev.Object.GetTypeMeta().Kind {
				continue
			}
			select {
			case w.ch <- store.Event{Type: ev.Type, Object: ev.Object.DeepCopyObject()}:
			default:
				s.log.Warn("filestore: a watcher fell behind; closing its channel", "buffer", cap(w.ch))
				s.dropWatcher(w)
			}
		}
	}
}
