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
	"bakery.dev/bakery/reconciler/deployment"
)

// RuntimeLogs is the part of the control loop that reads an app's own log
// on its nodes.
type RuntimeLogs interface {
	RuntimeLogs(ctx context.Context, name string, req deployment.RuntimeLogRequest, fn func(deployment.RuntimeLogLine)) error
}

// runtimeLogs serves GET /api/v1/deployments/{name}/logs?node=N&lines=L&follow=true
// as Server-Sent Events: `event: line` with a JSON RuntimeLogLine per line,
// then `event: end` (with an "error" field when a node failed) once every
// node's journal command ended. With follow=true it runs until the client
// goes away, and the remote journalctl processes are killed then.
func (s *Server) runtimeLogs(w http.ResponseWriter, r *http.Request) {
	name, err := nameOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rl, ok := s.cfg.Actions.(RuntimeLogs)
	if !ok {
		s.writeError(w, r, errorf(http.StatusServiceUnavailable, "this server runs no control loop"))
		return
	}
	q := r.URL.Query()
	req := deployment.RuntimeLogRequest{Node: q.Get("node")}
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100000 {
			s.writeError(w, r, badField("lines", "must be 0-100000"))
			return
		}
		req.Lines = n
	}
	switch q.Get("follow") {
	case "", "false", "0":
	case "true", "1":
		req.Follow = true
	default:
		s.writeError(w, r, badField("follow", "must be true or false"))
		return
	}
	rc := http.NewResponseController(w)
	ctx, cancel := streamContext(r)
	defer cancel()
	// Answer what can be answered before streaming starts.
	o, err := s.store.Get(r.Context(), api.KindDeployment, name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	active := false
	for _, ns := range o.(*api.Deployment).Status.Nodes {
		if ns.ActiveSlot != "" && (req.Node == "" || ns.Node == req.Node) {
			active = true
		}
	}
	if !active {
		s.writeError(w, r, errorf(http.StatusConflict, "deployment %s runs on no node yet%s", name, map[bool]string{true: " named " + req.Node}[req.Node != ""]))
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
	// A keepalive comment while the log is quiet keeps proxies from
	// closing the stream.
	hbDone := make(chan struct{})
	var hb sync.WaitGroup
	hb.Add(1)
	defer func() {
		close(hbDone)
		hb.Wait() // nothing may write after the handler returns
	}()
	go func() {
		defer hb.Done()
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-hbDone:
				return
			case <-t.C:
				mu.Lock()
				fmt.Fprint(w, ": keepalive\n\n")
				rc.Flush()
				mu.Unlock()
			}
		}
	}()
	_ = rc.SetWriteDeadline(time.Time{}) // a followed log may run for hours
	err = rl.RuntimeLogs(ctx, name, req, func(l deployment.RuntimeLogLine) { send("line", l) })
	end := map[string]string{}
	if err != nil {
		end["error"] = err.Error()
	}
	if ctx.Err() == nil {
		send("end", end)
	}
}
