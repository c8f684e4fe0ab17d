package reconciler

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/notify"
	"bakery.dev/bakery/sshexec"
)

// eventLog is an eventRecorder over a real file store, and what it
// recorded: read back from the store when it keeps events (store.Events),
// else as sent.
type eventLog struct {
	st  *filestore.Store
	rec *eventRecorder
	mu  sync.Mutex
	got []*api.Event
}

func newEventLog(t *testing.T, n *notify.Notifier) *eventLog {
	t.Helper()
	st, err := filestore.Open(t.TempDir(), filestore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{st: st}
	l.rec = newEventRecorder(st, n, slog.New(slog.DiscardHandler))
	l.rec.sent = func(e *api.Event) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.got = append(l.got, e)
	}
	return l
}

// events returns "Type Object" of every event recorded, oldest first.
func (l *eventLog) events(t *testing.T) []string {
	t.Helper()
	var evs []*api.Event
	if es, ok := any(l.st).(store.Events); ok {
		list, err := es.ListEvents(t.Context(), "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(list) - 1; i >= 0; i-- { // newest first
			evs = append(evs, list[i])
		}
	} else {
		l.mu.Lock()
		evs = append(evs, l.got...)
		l.mu.Unlock()
	}
	var out []string
	for _, e := range evs {
		if e.ID == "" || e.Time == nil {
			t.Errorf("event without ID or time: %+v", e)
		}
		out = append(out, e.Type+" "+e.Object)
	}
	return out
}

func (l *eventLog) last() *api.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got[len(l.got)-1]
}

func expectEvents(t *testing.T, l *eventLog, want ...string) {
	t.Helper()
	got := l.events(t)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNewEventID(t *testing.T) {
	a, b := newEventID(), newEventID()
	ns, rnd, ok := strings.Cut(a, "-")
	if _, err := strconv.ParseInt(ns, 10, 64); err != nil || !ok || len(rnd) != 8 || a == b {
		t.Fatalf("ids %q %q", a, b)
	}
}

func TestDiskLow(t *testing.T) {
	for _, tc := range []struct {
		d    *api.DiskUsage
		pct  float64
		want bool
	}{
		{nil, 10, false},
		{&api.DiskUsage{FilesystemBytes: 0, FreeBytes: 0}, 10, false},
		{&api.DiskUsage{FilesystemBytes: 1000, FreeBytes: 99}, 10, true},
		{&api.DiskUsage{FilesystemBytes: 1000, FreeBytes: 100}, 10, false},
		{&api.DiskUsage{FilesystemBytes: 1000, FreeBytes: 1}, -1, false},
	} {
		if got := diskLow(tc.d, tc.pct); got != tc.want {
			t.Errorf("diskLow(%+v, %g) = %v", tc.d, tc.pct, got)
		}
	}
}

// TestNodeEvents drives the node reconciler through Reachable and disk
// transitions: events are raised on transitions only, not on every retry.
func TestNodeEvents(t *testing.T) {
	ctx := t.Context()
	l := newEventLog(t, nil)
	node := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: "here"}, Spec: api.NodeSpec{Local: true}}
	node.Default()
	if _, err := l.st.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	// Pre-set: unreachable before, with plenty of free space.
	o, _ := l.st.Get(ctx, api.KindNode, "here")
	n := o.(*api.Node)
	n.Status.Reachable = false
	n.Status.Disk = &api.DiskUsage{FilesystemBytes: 1000, FreeBytes: 1000}
	api.SetCondition(&n.Status.Conditions, api.Condition{Type: api.ConditionReachable, Status: api.ConditionFalse, Reason: ReasonUnreachable})
	if _, err := l.st.UpdateStatus(ctx, n); err != nil {
		t.Fatal(err)
	}

	priv, _, err := sshexec.GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sshexec.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sshexec.NewPool(sshexec.Config{Signer: signer, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	// Every filesystem has less than 100% free: DiskLow once observed.
	r := &NodeReconciler{Store: l.st, Connector: SSHConnector{Pool: pool, Local: sshexec.NewLocal()}, DiskLowPercent: 100,
		Logger: slog.New(slog.DiscardHandler), events: l.rec}

	if _, err := r.reconcile(ctx, "here", false); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, l, "NodeRecovered Node/here", "DiskLow Node/here")
	if e := l.last(); e.Severity != api.SeverityWarning || !strings.Contains(e.Message, "below 100%") {
		t.Fatalf("DiskLow event %+v", e)
	}
	if _, err := r.reconcile(ctx, "here", false); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, l, "NodeRecovered Node/here", "DiskLow Node/here")

	// Unreachable: point it at a closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	setSpec := func(local bool) {
		t.Helper()
		o, _ := l.st.Get(ctx, api.KindNode, "here")
		n := o.(*api.Node)
		n.Spec.Local = local
		n.Spec.Address, n.Spec.Port = "", 0
		if !local {
			n.Spec.Address, n.Spec.Port, n.Spec.User = "127.0.0.1", port, "bakery"
		}
		if _, err := l.st.Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	setSpec(false)
	for range 2 { // the retry raises nothing new
		if _, err := r.reconcile(ctx, "here", false); err == nil {
			t.Fatal("closed port reached")
		}
	}
	expectEvents(t, l, "NodeRecovered Node/here", "DiskLow Node/here", "NodeUnreachable Node/here")
	if e := l.last(); e.Severity != api.SeverityError || e.Message == "" {
		t.Fatalf("NodeUnreachable event %+v", e)
	}

	// Back: recovered, and the disk, low all along, raises nothing.
	setSpec(true)
	for range 2 {
		if _, err := r.reconcile(ctx, "here", false); err != nil {
			t.Fatal(err)
		}
	}
	expectEvents(t, l, "NodeRecovered Node/here", "DiskLow Node/here", "NodeUnreachable Node/here", "NodeRecovered Node/here")
}

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
	l := newEventLog(t, nt)
	r := &DeploymentReconciler{events: l.rec}

	// Drift: web-1's active unit stopped, web-2 only lost its site.
	d := desired()
	d.Commit = c2
	stopped := serving(c2, "spec2")
	stopped.Units[nf.Blue] = "failed"
	noSite := serving(c2, "spec2")
	noSite.SiteHash = ""
	p := rolloutPlan{}
	for i, obs := range []Observed{stopped, noSite} {
		plan, err := Plan(d, obs)
		if err != nil {
			t.Fatal(err)
		}
		p.targets = append(p.targets, target{node: &api.Node{Metadata: api.ObjectMeta{Name: "web-" + strconv.Itoa(i+1)}}})
		p.plans = append(p.plans, plan)
	}
	r.unitUnhealthyEvents(ctx, "web", "web-2-abcd", p, []int{0, 1})
	expectEvents(t, l, "UnitUnhealthy Deployment/web")
	if e := l.last(); e.Severity != api.SeverityWarning || e.Rollout != "web-2-abcd" || !strings.Contains(e.Message, "node web-1: active unit is failed") {
		t.Fatalf("UnitUnhealthy event %+v", e)
	}

	ro := &api.Rollout{ID: "web-2-abcd", Deployment: "web", Revision: 2, Commit: c2, Trigger: api.TriggerDriftRepair}
	r.rolloutFinishedEvent(ctx, "web", ro, api.RolloutSucceeded, "")
	if e := l.last(); e.Type != api.EventRolloutSucceeded || e.Severity != api.SeverityInfo || e.Rollout != ro.ID {
		t.Fatalf("RolloutSucceeded event %+v", e)
	}
	r.rolloutFinishedEvent(ctx, "web", ro, api.RolloutSuperseded, "superseded")
	ro.ID = "web-3-ef01"
	r.rolloutFinishedEvent(ctx, "web", ro, api.RolloutFailed, "node web-1: health: no answer")
	if e := l.last(); e.Type != api.EventRolloutFailed || e.Severity != api.SeverityError || e.Rollout != "web-3-ef01" || e.Message != "node web-1: health: no answer" {
		t.Fatalf("RolloutFailed event %+v", e)
	}
	expectEvents(t, l, "UnitUnhealthy Deployment/web", "RolloutSucceeded Deployment/web", "RolloutFailed Deployment/web")

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
