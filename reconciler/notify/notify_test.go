package notify

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bakery.dev/bakery/api"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Target
	}{
		{"url=https://hooks.example/x,format=slack,on=failures", Target{URL: "https://hooks.example/x", Format: FormatSlack, On: OnFailures}},
		{"url=http://127.0.0.1:9/hook", Target{URL: "http://127.0.0.1:9/hook", Format: FormatJSON, On: OnAll}},
		{"https://hooks.example/x", Target{URL: "https://hooks.example/x", Format: FormatJSON, On: OnAll}},
		{"format=discord, url=https://d.example/a?x=1,2", Target{URL: "https://d.example/a?x=1,2", Format: FormatDiscord, On: OnAll}},
	} {
		got, err := ParseTarget(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "format=slack", "url=ftp://x/y", "url=https://x/y,format=teams", "url=https://x/y,on=some", "url=https://x/y,color=red", "url=/relative"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}

// receiver is a real local HTTP server recording the bodies it accepts.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	requests atomic.Int32
	fail     atomic.Int32 // answer 500 to this many requests first
	got      chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		b, _ := io.ReadAll(req.Body)
		if r.fail.Add(-1) >= 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
		r.got <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) target(format, on string) Target {
	return Target{URL: r.srv.URL + "/hook", Format: format, On: on}
}

func (r *receiver) wait(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d of %d messages", i, n)
		}
	}
}

func (r *receiver) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

var quiet = slog.New(slog.DiscardHandler)

func event(typ, sev, msg string) *api.Event {
	return &api.Event{ID: "1-a", Time: api.Now(), Type: typ, Severity: sev, Object: "Deployment/hello", Message: msg}
}

func fast() []Option {
	return []Option{WithLogger(quiet), WithRetry(5, 10*time.Millisecond), WithTimeout(2 * time.Second), WithCloseTimeout(5 * time.Second)}
}

func TestFormatsAndCounts(t *testing.T) {
	js, sl, dc := newReceiver(t), newReceiver(t), newReceiver(t)
	n := New([]Target{js.target(FormatJSON, OnAll), sl.target(FormatSlack, OnAll), dc.target(FormatDiscord, OnAll)}, fast()...)
	events := []*api.Event{
		event(api.EventRolloutSucceeded, api.SeverityInfo, "revision 3"),
		event(api.EventRolloutFailed, api.SeverityError, "node web-1: build: exit 1"),
		event(api.EventDiskLow, api.SeverityWarning, "5% free"),
	}
	for _, e := range events {
		n.Notify(e)
	}
	for _, r := range []*receiver{js, sl, dc} {
		r.wait(t, len(events))
	}
	n.Close()
	for _, r := range []*receiver{js, sl, dc} {
		if got := r.received(); len(got) != len(events) || int(r.requests.Load()) != len(events) {
			t.Fatalf("%d bodies, %d requests; want %d each", len(got), r.requests.Load(), len(events))
		}
	}
	// One worker per target delivers in order.
	var e api.Event
	if err := json.Unmarshal(js.received()[1], &e); err != nil || e.Type != api.EventRolloutFailed || e.Message != "node web-1: build: exit 1" || e.Object != "Deployment/hello" {
		t.Fatalf("json body %s: %+v %v", js.received()[1], e, err)
	}
	var s map[string]string
	if err := json.Unmarshal(sl.received()[1], &s); err != nil || len(s) != 1 || s["text"] != "error RolloutFailed Deployment/hello: node web-1: build: exit 1" {
		t.Fatalf("slack body %s", sl.received()[1])
	}
	var d map[string]string
	if err := json.Unmarshal(dc.received()[2], &d); err != nil || len(d) != 1 || d["content"] != "warning DiskLow Deployment/hello: 5% free" {
		t.Fatalf("discord body %s", dc.received()[2])
	}
}

func TestRetriesUntilSuccess(t *testing.T) {
	r := newReceiver(t)
	r.fail.Store(2)
	n := New([]Target{r.target(FormatJSON, OnAll)}, fast()...)
	n.Notify(event(api.EventNodeUnreachable, api.SeverityError, "connection refused"))
	r.wait(t, 1)
	n.Close()
	if got := len(r.received()); got != 1 {
		t.Fatalf("%d successful deliveries, want 1", got)
	}
	if got := r.requests.Load(); got != 3 {
		t.Fatalf("%d requests, want 3 (500, 500, 200)", got)
	}
}

func TestFailuresOnly(t *testing.T) {
	all, fail := newReceiver(t), newReceiver(t)
	n := New([]Target{all.target(FormatJSON, OnAll), fail.target(FormatSlack, OnFailures)}, fast()...)
	n.Notify(event(api.EventRolloutSucceeded, api.SeverityInfo, ""))
	n.Notify(event(api.EventNodeRecovered, api.SeverityInfo, ""))
	n.Notify(event(api.EventUnitUnhealthy, api.SeverityWarning, "active unit is failed"))
	n.Notify(event(api.EventNodeUnreachable, api.SeverityError, "down"))
	all.wait(t, 4)
	fail.wait(t, 2)
	n.Close()
	if len(all.received()) != 4 || len(fail.received()) != 2 {
		t.Fatalf("all got %d, failures got %d", len(all.received()), len(fail.received()))
	}
	var s map[string]string
	_ = json.Unmarshal(fail.received()[0], &s)
	if s["text"] != "warning UnitUnhealthy Deployment/hello: active unit is failed" {
		t.Fatalf("first failure message %q", s["text"])
	}
}

// A receiver that is down makes deliveries retry without blocking Notify;
// Close gives up within its bound.
func TestReceiverDownDoesNotBlock(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/hook"
	l.Close()
	up := newReceiver(t)
	n := New([]Target{{URL: down, Format: FormatJSON, On: OnAll}, up.target(FormatJSON, OnAll)},
		WithLogger(quiet), WithRetry(5, 500*time.Millisecond), WithTimeout(time.Second), WithQueueSize(4), WithCloseTimeout(300*time.Millisecond))
	start := time.Now()
	for range 20 { // more than the queue holds: the rest is dropped
		n.Notify(event(api.EventNodeUnreachable, api.SeverityError, "down"))
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("Notify blocked for %s", d)
	}
	up.wait(t, 1) // the other target is not held up by the dead one
	start = time.Now()
	n.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %s", d)
	}
	n.Notify(event(api.EventNodeRecovered, api.SeverityInfo, "")) // after Close: dropped, no panic
}

func TestNilNotifier(t *testing.T) {
	var n *Notifier
	n.Notify(event(api.EventDiskLow, api.SeverityWarning, ""))
	n.Close()
}
