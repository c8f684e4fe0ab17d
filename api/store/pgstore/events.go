package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// rawEvent is a row of the events table.
type rawEvent struct {
	id     int64
	kind   string
	typ    store.EventType
	object []byte
}

const eventColumns = `id, kind, type, object`

func scanEvent(r pgx.CollectableRow) (rawEvent, error) {
	var e rawEvent
	var typ string
	err := r.Scan(&e.id, &e.kind, &typ, &e.object)
	e.typ = store.EventType(typ)
	return e, err
}

func (e rawEvent) decode() (store.Event, error) {
	o, err := api.New(e.kind)
	if err != nil {
		return store.Event{}, fmt.Errorf("%w: event %d: %v", store.ErrCorrupt, e.id, err)
	}
	if err := json.Unmarshal(e.object, o); err != nil {
		return store.Event{}, fmt.Errorf("%w: event %d: %v", store.ErrCorrupt, e.id, err)
	}
	return store.Event{Type: e.typ, Object: o}, nil
}

// hub fans events out to the Store's watchers, in id order.
type hub struct {
	s        *Store
	mu       sync.Mutex
	last     int64 // id of the last event delivered
	watchers map[*watcher]bool
	closed   bool
}

type watcher struct {
	kind   string // "" for all
	from   int64  // deliver only events with a greater id
	ch     chan store.Event
	closed bool
}

func newHub(s *Store, last int64) *hub {
	return &hub{s: s, last: last, watchers: map[*watcher]bool{}}
}

// watch registers a watcher for the events committed after now. "Now" is
// the highest committed event id: every event with a higher id commits
// later (ids commit in order, see the package documentation).
func (h *hub) watch(ctx context.Context, kind string) (<-chan store.Event, error) {
	var from int64
	if err := h.s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&from); err != nil {
		return nil, fmt.Errorf("pgstore: watch: %w", mapErr(err))
	}
	w := &watcher{kind: kind, from: from, ch: make(chan store.Event, h.s.cfg.watchBuffer)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("pgstore: watch: store closed")
	}
	if h.last > from {
		// The listener has already delivered events after from: replay
		// them for this watcher (the lock holds further deliveries back).
		rows, err := h.s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE id > $1 AND id <= $2 ORDER BY id`, from, h.last)
		var evs []rawEvent
		if err == nil {
			evs, err = pgx.CollectRows(rows, scanEvent)
		}
		if err != nil {
			h.mu.Unlock()
			return nil, fmt.Errorf("pgstore: watch: %w", mapErr(err))
		}
		for _, e := range evs {
			if !h.send(w, e) {
				break
			}
		}
	}
	if !w.closed {
		h.watchers[w] = true
	}
	h.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-h.s.done:
		}
		h.mu.Lock()
		h.drop(w)
		h.mu.Unlock()
	}()
	return w.ch, nil
}

// deliver fans evs (in id order, after h.last) out to the watchers.
func (h *hub) deliver(evs []rawEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range evs {
		for w := range h.watchers {
			h.send(w, e)
		}
		h.last = e.id
	}
}

// send gives e to w if w wants it; a full channel (or an undecodable
// event) closes w, whose owner re-lists. It reports whether w is open.
// h.mu is held.
func (h *hub) send(w *watcher, e rawEvent) bool {
	if e.id <= w.from || (w.kind != "" && w.kind != e.kind) {
		return true
	}
	ev, err := e.decode()
	if err != nil {
		h.s.log.Error("watch: cannot decode event; closing the watch", "err", err)
		h.drop(w)
		return false
	}
	select {
	case w.ch <- ev:
		return true
	default:
		h.drop(w)
		return false
	}
}

// drop closes w's channel once and forgets w. h.mu is held.
func (h *hub) drop(w *watcher) {
	if w.closed {
		return
	}
	w.closed = true
	close(w.ch)
	delete(h.watchers, w)
}

// dropAll closes every watcher's channel (they re-list and watch again).
func (h *hub) dropAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		h.drop(w)
	}
}

// closeAll closes every watcher and refuses new ones.
func (h *hub) closeAll() {
	h.dropAll()
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

// listener owns the Store's LISTEN connection and reads new events.
type listener struct {
	s        *Store
	cfg      *pgx.ConnConfig
	last     int64     // id of the last event read
	lastRead time.Time // when events were last read successfully
}

// fetchLimit bounds one read of the events table.
const fetchLimit = 1000

func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	l.lastRead = time.Now()
	return conn, nil
}

// run serves conn and, whenever it fails, reconnects with backoff and
// catches up from the last event read.
func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	backoff := l.s.cfg.backoffMin
	for {
		readBefore := l.lastRead
		err := l.serve(ctx, conn)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if l.lastRead.After(readBefore) {
			backoff = l.s.cfg.backoffMin // it worked for a while
		}
		l.s.log.Warn("watch listener: connection lost, reconnecting", "err", err)
		for conn = nil; conn == nil; {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, l.s.cfg.backoffMax)
			down := time.Since(l.lastRead)
			c, err := l.connect(ctx)
			if err != nil {
				if ctx.Err() == nil {
					l.s.log.Warn("watch listener: reconnect failed", "err", err, "retry_in", backoff)
				}
				continue
			}
			conn = c
			l.s.reconnects.Add(1)
			if down > l.s.cfg.retention/2 {
				// Events we did not read may have been pruned.
				l.s.log.Warn("watch listener: disconnected too long; watchers must re-list", "down", down)
				l.s.hub.dropAll()
			}
		}
	}
}

// serve reads what is new, then waits for a notification (or the poll
// interval) and reads again, until conn fails or ctx ends.
func (l *listener) serve(ctx context.Context, conn *pgx.Conn) error {
	for {
		if err := l.fetch(ctx, conn); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, l.s.cfg.pollEvery)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() != nil && !conn.IsClosed():
			// Poll interval: read anyway, in case a notification was lost.
		default:
			return err
		}
	}
}

func (l *listener) fetch(ctx context.Context, conn *pgx.Conn) error {
	for {
		rows, err := conn.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE id > $1 ORDER BY id LIMIT $2`, l.last, fetchLimit)
		if err != nil {
			return err
		}
		evs, err := pgx.CollectRows(rows, scanEvent)
		if err != nil {
			return err
		}
		l.lastRead = time.Now()
		if len(evs) == 0 {
			return nil
		}
		l.s.hub.deliver(evs)
		l.last = evs[len(evs)-1].id
		if len(evs) < fetchLimit {
			return nil
		}
	}
}
