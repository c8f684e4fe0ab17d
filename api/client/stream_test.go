package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/client"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/storetest"
)

// streamServer is the real API server on a file store whose log streams a
// test can cut: cut(n, r) says whether the n-th stream request (from 1)
// ends after its first write of lines; it may also change r.
type streamServer struct {
	st      *filestore.Store
	c       *client.Client
	mu      sync.Mutex
	n       int
	lastIDs []string // Last-Event-ID of each stream request
}

func (s *streamServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lastIDs...)
}

// cutWriter cancels its request after a write that holds a line event.
// Later writes fail, as on a broken connection.
type cutWriter struct {
	http.ResponseWriter
	cancel context.CancelFunc
	cut    bool
}

func (w *cutWriter) Write(b []byte) (int, error) {
	if w.cut {
		return 0, errors.New("connection cut")
	}
	n, err := w.ResponseWriter.Write(b)
	if bytes.Contains(b, []byte("event: line")) {
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		w.cut = true
		w.cancel()
	}
	return n, err
}

func (w *cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func startStreamServer(t *testing.T, cut func(n int, r *http.Request) bool) *streamServer {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st, err := filestore.Open(t.TempDir(), filestore.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	token, _, err := auth.EnsureAdminToken(t.Context(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Logger: log,
		Stream: server.StreamConfig{Poll: 5 * time.Millisecond, Heartbeat: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	s := &streamServer{st: st}
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !bytes.HasSuffix([]byte(r.URL.Path), []byte("/logs/stream")) {
			h.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		s.n++
		n := s.n
		s.lastIDs = append(s.lastIDs, r.Header.Get("Last-Event-ID"))
		s.mu.Unlock()
		if cut != nil && cut(n, r) {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			h.ServeHTTP(&cutWriter{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	s.c, err = client.New(hs.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(t.Context(), storetest.Deployment("web", "/srv/repo")); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRollout(t.Context(), storetest.Rollout("web-1-aaaa", "web", 1, 0)); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *streamServer) appendLines(t *testing.T, from, to int64) {
	t.Helper()
	var lines []api.LogLine
	for i := from; i <= to; i++ {
		lines = append(lines, api.LogLine{Seq: i, Node: "n1", Stream: api.StreamStderr, Time: api.Now(), Text: fmt.Sprintf("line %d", i)})
	}
	if err := s.st.AppendLogs(t.Context(), "web-1-aaaa", lines); err != nil {
		t.Fatal(err)
	}
}

func (s *streamServer) finish(t *testing.T, state, msg string) {
	t.Helper()
	ro, err := s.st.GetRollout(t.Context(), "web-1-aaaa")
	if err != nil {
		t.Fatal(err)
	}
	ro.State, ro.Message = state, msg
	if err := s.st.UpdateRollout(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
}

// collector gathers the lines StreamLogs delivers.
type collector struct {
	mu    sync.Mutex
	seqs  []int64
	first chan struct{}
}

func newCollector() *collector { return &collector{first: make(chan struct{})} }

func (c *collector) add(l api.LogLine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.Text != fmt.Sprintf("line %d", l.Seq) || l.Stream != api.StreamStderr {
		panic(fmt.Sprintf("bad line %+v", l))
	}
	if len(c.seqs) == 0 {
		close(c.first)
	}
	c.seqs = append(c.seqs, l.Seq)
}

func (c *collector) check(t *testing.T, from, to int64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(len(c.seqs)) != to-from+1 {
		t.Fatalf("got %d lines, want %d: %v", len(c.seqs), to-from+1, c.seqs)
	}
	for i, s := range c.seqs {
		if s != from+int64(i) {
			t.Fatalf("line %d has seq %d: %v", i, s, c.seqs)
		}
	}
}

func waitFirst(t *testing.T, c *collector) {
	t.Helper()
	select {
	case <-c.first:
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10s")
	}
}

func TestStreamLogsReconnects(t *testing.T) {
	// The first two connections drop after their first lines; the second
	// also loses its Last-Event-ID on the way, so the server replays from
	// the start and the client must drop the repeats.
	s := startStreamServer(t, func(n int, r *http.Request) bool {
		if n == 2 {
			r.Header.Del("Last-Event-ID")
			r.URL.RawQuery = "after=0"
		}
		return n <= 2
	})
	s.appendLines(t, 1, 30)
	col := newCollector()
	type result struct {
		end *api.StreamEnd
		err error
	}
	done := make(chan result, 1)
	go func() {
		end, err := s.c.StreamLogs(t.Context(), "web-1-aaaa", 0, col.add)
		done <- result{end, err}
	}()
	waitFirst(t, col)
	s.appendLines(t, 31, 45)
	s.appendLines(t, 46, 60)
	s.finish(t, api.RolloutFailed, "health check failed on n1")
	var res result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("StreamLogs did not return")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if *res.end != (api.StreamEnd{State: api.RolloutFailed, Message: "health check failed on n1"}) {
		t.Fatalf("end %+v", res.end)
	}
	col.check(t, 1, 60)
	reqs := s.requests()
	if len(reqs) < 3 || reqs[0] != "" || reqs[1] == "" || reqs[2] == "" {
		t.Fatalf("Last-Event-ID of the stream requests: %q", reqs)
	}
}

func TestStreamLogsAfter(t *testing.T) {
	s := startStreamServer(t, nil)
	s.appendLines(t, 1, 10)
	s.finish(t, api.RolloutSucceeded, "")
	col := newCollector()
	end, err := s.c.StreamLogs(t.Context(), "web-1-aaaa", 4, col.add)
	if err != nil || end.State != api.RolloutSucceeded {
		t.Fatalf("end %+v, err %v", end, err)
	}
	col.check(t, 5, 10)
	if r := s.requests(); len(r) != 1 || r[0] != "4" {
		t.Fatalf("requests %q", r)
	}
}

func TestStreamLogsErrors(t *testing.T) {
	s := startStreamServer(t, nil)
	_, err := s.c.StreamLogs(t.Context(), "nope-1", 0, func(api.LogLine) {})
	if !client.IsNotFound(err) {
		t.Fatalf("unknown rollout: %v", err)
	}
	_, err = s.c.StreamLogs(t.Context(), "web-1-aaaa", -1, func(api.LogLine) {})
	if !client.IsInvalid(err) {
		t.Fatalf("after -1: %v", err)
	}
	if n := len(s.requests()); n != 2 {
		t.Fatalf("%d stream requests: an error answer must not be retried", n)
	}
	bad, err := client.New(s.c.Server(), "bkr_wrong")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.StreamLogs(t.Context(), "web-1-aaaa", 0, func(api.LogLine) {}); !client.IsUnauthorized(err) {
		t.Fatalf("bad token: %v", err)
	}

	// The context ends the stream of a running rollout.
	s.appendLines(t, 1, 3)
	col := newCollector()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.c.StreamLogs(ctx, "web-1-aaaa", 0, col.add)
		done <- err
	}()
	waitFirst(t, col)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("StreamLogs did not return after cancel")
	}
}

func TestStreamLogsGivesUp(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusBadGateway)
	}))
	t.Cleanup(hs.Close)
	c, err := client.New(hs.URL, "bkr_x")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.StreamLogs(t.Context(), "web-1-aaaa", 0, func(api.LogLine) {})
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusBadGateway {
		t.Fatalf("err %v", err)
	}
}
