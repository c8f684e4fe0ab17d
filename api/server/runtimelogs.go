package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"bakery.dev/bakery/api"
)

// runtimeLogs serves GET /api/v1/deployments/{name}/logs?node=N&lines=L&follow=true[&process=P]
// as Server-Sent Events: `event: line` with a JSON RuntimeLogLine per line,
// then `event: end` (with an "error" field when a node failed) once every
// node's journal command ended. With follow=true it runs until the client
// goes away, and the remote journalctl processes are killed then.
func (s *Server) runtimeLogs(w http.ResponseWriter, r *http.Request) {
	name, req, err := s.runtimeLogRequest(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	ctx, cancel := streamContext(r)
	defer cancel()
	// Answer what can be answered before streaming starts.
	if err := s.runsSomewhere(r.Context(), name, req.Node); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Headers go out at once: a quiet log must not look like a hung server.
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": streaming\n\n")
	rc.Flush()
	var mu sync.Mutex // one writer at a time: lines from several nodes, keepalives
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		rc.Flush()
	}
	stop := keepalive(w, rc, &mu, 15*time.Second)
	defer stop()                         // nothing may write after the handler returns
	_ = rc.SetWriteDeadline(time.Time{}) // a followed log may run for hours
	err = s.cfg.Loop.RuntimeLogs(ctx, name, req, func(l api.RuntimeLogLine) { send("line", l) })
	end := api.RuntimeLogEnd{}
	if err != nil {
		end.Error = err.Error()
	}
	if ctx.Err() == nil {
		send("end", end)
	}
}

// runtimeLogRequest reads the deployment's name and the query of a
// runtime log request (an error: the answer).
func (s *Server) runtimeLogRequest(r *http.Request) (string, api.RuntimeLogRequest, error) {
	var req api.RuntimeLogRequest
	name, err := nameOf(r)
	if err != nil {
		return "", req, err
	}
	if s.cfg.Loop == nil {
		return "", req, errorf(http.StatusServiceUnavailable, "this server runs no control loop")
	}
	q := r.URL.Query()
	req.Node = q.Get("node")
	if req.Schedule = q.Get("schedule"); req.Schedule != "" && (api.ValidateName(req.Schedule) != "" || len(req.Schedule) > api.MaxScheduleName) {
		return "", req, badField("schedule", "must be a schedule name")
	}
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100000 {
			return "", req, badField("lines", "must be 0-100000")
		}
		req.Lines = n
	}
	if req.Process = q.Get("process"); req.Process != "" {
		if r := api.ValidateProcessName(req.Process); r != "" {
			return "", req, badField("process", "%s", r)
		}
	}
	switch q.Get("follow") {
	case "", "false", "0":
	case "true", "1":
		req.Follow = true
	default:
		return "", req, badField("follow", "must be true or false")
	}
	return name, req, nil
}

// runsSomewhere returns nil when deployment name has an active slot on a
// node (on node, unless that is ""), else the 409 (or the store's error).
func (s *Server) runsSomewhere(ctx context.Context, name, node string) error {
	o, err := s.store.Get(ctx, api.KindDeployment, name)
	if err != nil {
		return err
	}
	for _, ns := range o.(*api.Deployment).Status.Nodes {
		if ns.ActiveSlot != "" && (node == "" || ns.Node == node) {
			return nil
		}
	}
	return errorf(http.StatusConflict, "deployment %s runs on no node yet%s", name, map[bool]string{true: " named " + node}[node != ""])
}

// keepalive writes a keepalive comment every interval, which keeps
// proxies from closing a quiet stream, holding mu for each write. The
// function it returns stops it and waits until it stopped.
func keepalive(w http.ResponseWriter, rc *http.ResponseController, mu *sync.Mutex, interval time.Duration) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				fmt.Fprint(w, ": keepalive\n\n")
				rc.Flush()
				mu.Unlock()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
