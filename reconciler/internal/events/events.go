package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/notify"
)

// Recorder records the events the reconcilers raise: in the store,
// when it keeps events (store.Events), and to the notification targets.
// Recording never fails a reconcile: errors are logged. A nil
// *Recorder records nothing.
type Recorder struct {
	store    store.Store // events are kept when it implements store.Events
	notifier *notify.Notifier
	logger   *slog.Logger
	// Sent, if set, sees every event recorded (tests).
	Sent func(*api.Event)
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
		e.Time = api.Now()
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
