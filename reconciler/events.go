package reconciler

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

// DefaultDiskLowPercent is the free space, in percent of a node's
// filesystem, below which a DiskLow event is raised.
const DefaultDiskLowPercent = 10

// eventRecorder records the events the reconcilers raise: in the store,
// when it keeps events (store.Events), and to the notification targets.
// Recording never fails a reconcile: errors are logged. A nil
// *eventRecorder records nothing.
type eventRecorder struct {
	store    store.Store // events are kept when it implements store.Events
	notifier *notify.Notifier
	logger   *slog.Logger
	// sent, if set, sees every event recorded (tests).
	sent func(*api.Event)
}

func newEventRecorder(s store.Store, n *notify.Notifier, l *slog.Logger) *eventRecorder {
	if l == nil {
		l = slog.Default()
	}
	return &eventRecorder{store: s, notifier: n, logger: l}
}

// newEventID returns "<unix-nano>-<random>".
func newEventID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%d-%s", time.Now().UnixNano(), hex.EncodeToString(b))
}

// record fills e's ID and time when unset, stores it and notifies.
func (r *eventRecorder) record(ctx context.Context, e *api.Event) {
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
	if r.sent != nil {
		r.sent(e)
	}
}

// diskLow reports whether d has less than pct percent free; unknown usage
// is not low.
func diskLow(d *api.DiskUsage, pct float64) bool {
	if d == nil || d.FilesystemBytes <= 0 || pct <= 0 {
		return false
	}
	return float64(d.FreeBytes)*100 < pct*float64(d.FilesystemBytes)
}
