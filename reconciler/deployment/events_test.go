package deployment

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/internal/events/eventstest"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/notify"
)

// TestDeploymentEvents: a rollout's end and a drift repair of a stopped
// unit, through the recorder, also delivered to a real local webhook.
func TestDeploymentEvents(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	var bodies []string
	got := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := req.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		mu.Lock()
		bodies = append(bodies, b.String())
		mu.Unlock()
		got <- struct{}{}
	}))
	defer srv.Close()
	nt := notify.New([]notify.Target{{URL: srv.URL, Format: notify.FormatSlack, On: notify.OnFailures}},
		notify.WithLogger(slog.New(slog.DiscardHandler)), notify.WithRetry(3, 10*time.Millisecond))
	l := eventstest.New(t, nt)
	r := &Reconciler{Events: l.Rec}

	// Drift: web-1's active unit stopped, web-2 only lost its site.
	d := desired()
	d.Commit = c2
	stopped := serving(c2, "spec2")
	stopped.Units[nf.Blue] = "failed"
	noSite := serving(c2, "spec2")
	noSite.SiteHash = ""
	p := rolloutPlan{}
	for i, obs := range []nodescript.Observed{stopped, noSite} {
		plan, err := Plan(d, obs)
		if err != nil {
			t.Fatal(err)
		}
		p.targets = append(p.targets, target{node: &api.Node{Metadata: api.ObjectMeta{Name: "web-" + strconv.Itoa(i+1)}}})
		p.plans = append(p.plans, plan)
	}
	r.unitUnhealthyEvents(ctx, "web", "web-2-abcd", p, []int{0, 1})
	eventstest.Expect(t, l, "UnitUnhealthy Deployment/web")
	if e := l.Last(); e.Severity != api.SeverityWarning || e.Rollout != "web-2-abcd" || !strings.Contains(e.Message, "node web-1: active unit is failed") {
		t.Fatalf("UnitUnhealthy event %+v", e)
	}

	ro := &api.Rollout{ID: "web-2-abcd", Deployment: "web", Revision: 2, Commit: c2, Trigger: api.TriggerDriftRepair}
	r.rolloutFinishedEvent(ctx, "web", ro, api.RolloutSucceeded, "")
	if e := l.Last(); e.Type != api.EventRolloutSucceeded || e.Severity != api.SeverityInfo || e.Rollout != ro.ID {
		t.Fatalf("RolloutSucceeded event %+v", e)
	}
	r.rolloutFinishedEvent(ctx, "web", ro, api.RolloutSuperseded, "superseded")
	ro.ID = "web-3-ef01"
	r.rolloutFinishedEvent(ctx, "web", ro, api.RolloutFailed, "node web-1: health: no answer")
	if e := l.Last(); e.Type != api.EventRolloutFailed || e.Severity != api.SeverityError || e.Rollout != "web-3-ef01" || e.Message != "node web-1: health: no answer" {
		t.Fatalf("RolloutFailed event %+v", e)
	}
	eventstest.Expect(t, l, "UnitUnhealthy Deployment/web", "RolloutSucceeded Deployment/web", "RolloutFailed Deployment/web")

	// The failures-only webhook got the warning and the error, once each.
	for range 2 {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("webhook not called")
		}
	}
	nt.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 || !strings.Contains(bodies[0], `"text":"warning UnitUnhealthy Deployment/web: node web-1`) ||
		bodies[1] != `{"text":"error RolloutFailed Deployment/web: node web-1: health: no answer"}` {
		t.Fatalf("webhook bodies %q", bodies)
	}
}
