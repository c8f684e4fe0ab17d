package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/notify"
)

// Recorder records the events the reconcilers raise: in the store,
// when it keeps events (store.Events), and to the notification targets.
// Recording never fails a reconcile: errors are logged. A nil
// *Recorder records nothing. An event repeating its object's previous one
// within RepeatInterval is counted, not stored again (as Kubernetes
// aggregates events with a count): a loop that keeps finding the same
// problem writes one event per interval, not one per resync.
type Recorder struct {
	store    store.Store // events are kept when it implements store.Events
	notifier *notify.Notifier
	logger   *slog.Logger
	// Sent, if set, sees every event recorded (tests).
	Sent func(*api.Event)
	// RepeatInterval: an event identical to its object's previous one
	// (type, severity, message, rollout) within this long of the stored
	// one is not stored or sent again but counted; the next occurrence
	// after it is stored with the count (api.Event.Count). Default
	// DefaultRepeatInterval; negative: every event is stored.
	RepeatInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu   sync.Mutex
	last map[string]*lastEvent // object → its previous event
}

// DefaultRepeatInterval is the default of Recorder.RepeatInterval.
const DefaultRepeatInterval = 5 * time.Minute

// lastEvent is an object's previous event as the recorder saw it.
type lastEvent struct {
	typ, severity, message, rollout string
	stored                          time.Time // when it was last stored
	repeats                         int       // occurrences since, not stored
}

// NewRecorder returns a Recorder keeping events in s (when it keeps
// events) and sending them to n (nil: none).
func NewRecorder(s store.Store, n *notify.Notifier, l *slog.Logger) *Recorder {
	if l == nil {
		l = slog.Default()
	}
	return &Recorder{store: s, notifier: n, logger: l}
}

// newEventID returns "<unix-nano>-<random>".
func newEventID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%d-%s", time.Now().UnixNano(), hex.EncodeToString(b))
}

// Record fills e's ID and time when unset, stores it and notifies.
func (r *Recorder) Record(ctx context.Context, e *api.Event) {
	if r == nil {
		return
	}
	if e.ID == "" {
		e.ID = newEventID()
	}
	if e.Time == nil {
		e.Time = api.NewTime(r.now())
	}
	if r.repeated(e) {
		r.logger.Debug("event repeated", "type", e.Type, "object", e.Object, "message", e.Message)
		return
	}
	r.logger.Info("event", "type", e.Type, "severity", e.Severity, "object", e.Object, "message", e.Message)
	if es, ok := r.store.(store.Events); ok {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := es.AddEvent(sctx, e); err != nil {
			r.logger.Warn("recording an event", "type", e.Type, "object", e.Object, "err", err)
		}
		cancel()
	}
	r.notifier.Notify(e)
	if r.Sent != nil {
		r.Sent(e)
	}
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// repeated reports whether e repeats its object's previous event within
// RepeatInterval of it being stored, counting it then; otherwise it
// remembers e as the object's previous event, with the repeats it stands
// for in e.Count.
func (r *Recorder) repeated(e *api.Event) bool {
	every := r.RepeatInterval
	if every == 0 {
		every = DefaultRepeatInterval
	}
	if every < 0 {
		return false
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.last[e.Object]
	if l != nil && l.typ == e.Type && l.severity == e.Severity && l.message == e.Message && l.rollout == e.Rollout {
		if now.Sub(l.stored) < every {
			l.repeats++
			return true
		}
		if l.repeats > 0 && e.Count == 0 {
			e.Count = l.repeats + 1
		}
		l.stored, l.repeats = now, 0
		return false
	}
	if r.last == nil {
		r.last = map[string]*lastEvent{}
	}
	r.last[e.Object] = &lastEvent{typ: e.Type, severity: e.Severity, message: e.Message, rollout: e.Rollout, stored: now}
	return false
}
