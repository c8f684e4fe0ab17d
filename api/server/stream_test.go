package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/storetest"
)

// sseEvent is one event (or comment) read from a stream.
type sseEvent struct {
	id, event, data string
	comment         string
}

// stream is an open SSE answer read by a goroutine into events (closed at
// the end of the answer).
type stream struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// openStream GETs path with the admin token and extra headers; it fails
// the test unless the answer is a 200 event stream.
func (e *env) openStream(path string, header map[string]string) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", e.ts.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		resp.Body.Close()
		e.t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	st := &stream{resp: resp, events: make(chan sseEvent, 1024), cancel: cancel}
	e.t.Cleanup(func() { cancel(); resp.Body.Close() })
	go func() {
		defer close(st.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				st.events <- ev
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.comment = strings.TrimSpace(line[1:])
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "id":
					ev.id = v
				case "event":
					ev.event = v
				case "data":
					ev.data = v
				}
			}
		}
	}()
	return st
}

// next returns the next event that is not a comment, failing after 10 s.
func (s *stream) next(t *testing.T) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("stream ended early")
			}
			if ev.comment != "" && ev.event == "" && ev.data == "" {
				continue
			}
			return ev
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

// readLines reads line events until the end event and returns the lines'
// seqs (checking ids and data) and the end.
func (s *stream) readAll(t *testing.T) ([]int64, api.StreamEnd) {
	t.Helper()
	var seqs []int64
	for {
		ev := s.next(t)
		switch ev.event {
		case "line":
			var l api.LogLine
			if err := json.Unmarshal([]byte(ev.data), &l); err != nil {
				t.Fatalf("line data %q: %v", ev.data, err)
			}
			if ev.id != strconv.FormatInt(l.Seq, 10) {
				t.Fatalf("event id %q for seq %d", ev.id, l.Seq)
			}
			if l.Text != fmt.Sprintf("line %d", l.Seq) || l.Node != "n1" || l.Stream != api.StreamStdout {
				t.Fatalf("line %+v", l)
			}
			seqs = append(seqs, l.Seq)
		case "end":
			var end api.StreamEnd
			if err := json.Unmarshal([]byte(ev.data), &end); err != nil {
				t.Fatalf("end data %q: %v", ev.data, err)
			}
			if ev.id != "" {
				t.Fatalf("end event has id %q", ev.id)
			}
			// The answer ends after the end event.
			select {
			case ev, ok := <-s.events:
				if ok {
					t.Fatalf("event after end: %+v", ev)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("stream not closed after end")
			}
			return seqs, end
		default:
			t.Fatalf("unexpected event %+v", ev)
		}
	}
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func equalSeqs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fastStream makes the server poll and beat quickly.
func fastStream(poll, beat time.Duration) func(*server.Config) {
	return func(c *server.Config) { c.Stream = server.StreamConfig{Poll: poll, Heartbeat: beat} }
}

// newRollout creates deployment web and a running rollout id of it.
func (e *env) newRollout(id string) {
	e.t.Helper()
	if r := e.req("GET", "/api/v1/deployments/web", "", ""); r.status == 404 {
		want(e.t, e.req("POST", "/api/v1/deployments", "application/yaml", deployment("web")), 201)
	}
	if err := e.st.CreateRollout(e.t.Context(), storetest.Rollout(id, "web", 1, 0)); err != nil {
		e.t.Fatal(err)
	}
}

// appendLines stores lines from..to of rollout id.
func (e *env) appendLines(id string, from, to int64) {
	e.t.Helper()
	var lines []api.LogLine
	for i := from; i <= to; i++ {
		lines = append(lines, api.LogLine{Seq: i, Node: "n1", Stream: api.StreamStdout, Time: api.Now(), Text: fmt.Sprintf("line %d", i)})
	}
	if err := e.st.AppendLogs(e.t.Context(), id, lines); err != nil {
		e.t.Fatal(err)
	}
}

// finish marks rollout id as ended in state with message.
func (e *env) finish(id, state, message string) {
	e.t.Helper()
	ro, err := e.st.GetRollout(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	ro.State, ro.Message, ro.FinishedAt = state, message, api.Now()
	if err := e.st.UpdateRollout(e.t.Context(), ro); err != nil {
		e.t.Fatal(err)
	}
}

func TestLogStreamFollow(t *testing.T) {
	e := newEnv(t, fastStream(5*time.Millisecond, time.Hour))
	e.newRollout("web-1-aaaa")
	st := e.openStream("/api/v1/rollouts/web-1-aaaa/logs/stream", nil)
	h := st.resp.Header
	if ct := h.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	if h.Get("X-Accel-Buffering") != "no" || h.Get("Content-Encoding") != "" {
		t.Fatalf("headers %v", h)
	}
	// Connected before any line exists: lines arrive as they are stored.
	e.appendLines("web-1-aaaa", 1, 3)
	for i := int64(1); i <= 3; i++ {
		if ev := st.next(t); ev.event != "line" || ev.id != strconv.FormatInt(i, 10) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	e.appendLines("web-1-aaaa", 4, 10)
	e.appendLines("web-1-aaaa", 11, 2500) // more than one store batch
	e.finish("web-1-aaaa", api.RolloutSucceeded, "all nodes serve 0123456")
	seqs, end := st.readAll(t)
	if !equalSeqs(seqs, seqRange(4, 2500)) {
		t.Fatalf("got %d lines (%v…)", len(seqs), seqs[:min(len(seqs), 5)])
	}
	if end != (api.StreamEnd{State: api.RolloutSucceeded, Message: "all nodes serve 0123456"}) {
		t.Fatalf("end %+v", end)
	}
}

func TestLogStreamDoneReplaysAndEnds(t *testing.T) {
	e := newEnv(t)
	e.newRollout("web-1-aaaa")
	e.appendLines("web-1-aaaa", 1, 5)
	e.finish("web-1-aaaa", api.RolloutFailed, "build failed")
	seqs, end := e.openStream("/api/v1/rollouts/web-1-aaaa/logs/stream?after=2", nil).readAll(t)
	if !equalSeqs(seqs, seqRange(3, 5)) || end.State != api.RolloutFailed || end.Message != "build failed" {
		t.Fatalf("seqs %v end %+v", seqs, end)
	}
	// The end event carries "message" even when empty.
	e.newRollout("web-2-aaaa")
	e.finish("web-2-aaaa", api.RolloutSucceeded, "")
	ev := e.openStream("/api/v1/rollouts/web-2-aaaa/logs/stream", nil).next(t)
	if ev.event != "end" || ev.data != `{"state":"succeeded","message":""}` {
		t.Fatalf("end event %+v", ev)
	}
}

func TestLogStreamResume(t *testing.T) {
	e := newEnv(t, fastStream(5*time.Millisecond, time.Hour))
	e.newRollout("web-1-aaaa")
	e.appendLines("web-1-aaaa", 1, 10)
	st := e.openStream("/api/v1/rollouts/web-1-aaaa/logs/stream?after=0", nil)
	var last string
	for range 4 {
		last = st.next(t).id
	}
	st.cancel() // the connection drops
	e.appendLines("web-1-aaaa", 11, 12)
	// Last-Event-ID wins over after=.
	st = e.openStream("/api/v1/rollouts/web-1-aaaa/logs/stream?after=1", map[string]string{"Last-Event-ID": last})
	e.appendLines("web-1-aaaa", 13, 15)
	e.finish("web-1-aaaa", api.RolloutFailed, "health check failed")
	seqs, end := st.readAll(t)
	if last != "4" || !equalSeqs(seqs, seqRange(5, 15)) || end.State != api.RolloutFailed {
		t.Fatalf("last %q, seqs %v, end %+v", last, seqs, end)
	}
}

func TestLogStreamManyClients(t *testing.T) {
	e := newEnv(t, fastStream(5*time.Millisecond, time.Hour))
	e.newRollout("web-1-aaaa")
	e.appendLines("web-1-aaaa", 1, 5)
	const clients = 50
	streams := make([]*stream, clients)
	for i := range streams {
		streams[i] = e.openStream("/api/v1/rollouts/web-1-aaaa/logs/stream", nil)
	}
	var wg sync.WaitGroup
	errs := make(chan string, clients)
	for i, st := range streams {
		wg.Go(func() {
			timeout := time.After(20 * time.Second)
			var seqs []int64
			for {
				select {
				case ev, ok := <-st.events:
					switch {
					case !ok:
						errs <- fmt.Sprintf("client %d: stream ended after %d lines without end", i, len(seqs))
						return
					case ev.event == "line":
						n, _ := strconv.ParseInt(ev.id, 10, 64)
						seqs = append(seqs, n)
					case ev.event == "end":
						if !equalSeqs(seqs, seqRange(1, 200)) || !strings.Contains(ev.data, `"succeeded"`) {
							errs <- fmt.Sprintf("client %d: %d lines, end %s", i, len(seqs), ev.data)
						}
						return
					}
				case <-timeout:
					errs <- fmt.Sprintf("client %d: no end within 20s (%d lines)", i, len(seqs))
					return
				}
			}
		})
	}
	for from := int64(6); from <= 200; from += 15 {
		e.appendLines("web-1-aaaa", from, min(from+14, 200))
	}
	e.finish("web-1-aaaa", api.RolloutSucceeded, "")
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

func TestLogStreamHeartbeat(t *testing.T) {
	e := newEnv(t, fastStream(5*time.Millisecond, 20*time.Millisecond))
	e.newRollout("web-1-aaaa")
	st := e.openStream("/api/v1/rollouts/web-1-aaaa/logs/stream", nil)
	timeout := time.After(10 * time.Second)
	for beats := 0; beats < 2; {
		select {
		case ev, ok := <-st.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.comment != "keepalive" || ev.event != "" || ev.data != "" {
				t.Fatalf("idle stream sent %+v", ev)
			}
			beats++
		case <-timeout:
			t.Fatal("no heartbeat within 10s")
		}
	}
}

func TestLogStreamClientGone(t *testing.T) {
	e := newEnv(t)
	e.newRollout("web-1-aaaa")
	srv, err := server.New(server.Config{Store: e.st, Logger: slog.New(slog.DiscardHandler),
		Stream: server.StreamConfig{Poll: time.Hour, Heartbeat: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{}, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Handler().ServeHTTP(w, r)
		returned <- struct{}{}
	}))
	t.Cleanup(ts.Close)
	e.ts = ts
	e.appendLines("web-1-aaaa", 1, 1)
	st := e.openStream("/api/v1/rollouts/web-1-aaaa/logs/stream", nil)
	if ev := st.next(t); ev.id != "1" {
		t.Fatalf("event %+v", ev)
	}
	// The handler now waits an hour for the next poll; the client leaves.
	st.cancel()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("handler still running 10s after the client left")
	}
}

func TestLogStreamErrors(t *testing.T) {
	e := newEnv(t)
	e.newRollout("web-1-aaaa")
	get := func(path string, header map[string]string, token string) response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "GET", e.ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return e.send(req)
	}
	const p = "/api/v1/rollouts/web-1-aaaa/logs/stream"
	want(t, get(p, nil, ""), 401)
	want(t, get(p, nil, "bkr_wrong"), 401)
	r := get("/api/v1/rollouts/nope-1/logs/stream", nil, e.token)
	want(t, r, 404)
	r.err(t)
	want(t, get("/api/v1/rollouts/Bad..id/logs/stream", nil, e.token), 400)
	r = get(p+"?after=x", nil, e.token)
	want(t, r, 400)
	wantDetail(t, r.err(t), "after", "non-negative")
	want(t, get(p+"?after=-1", nil, e.token), 400)
	r = get(p, map[string]string{"Last-Event-ID": "abc"}, e.token)
	want(t, r, 400)
	wantDetail(t, r.err(t), "Last-Event-ID", "non-negative")
	want(t, e.req("POST", p, "", ""), 405)
}
