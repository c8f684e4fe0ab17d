package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"bakery.dev/bakery/api"
)

// exec serves POST /api/v1/deployments/{name}/exec (body: api.ExecRequest)
// as Server-Sent Events: `event: line` with a JSON api.ExecLine per line of
// output, then `event: end` with the api.ExecEnd (the command's exit
// status). The command runs in the deployment's active release with its
// environment on one node; when the client goes away, it is stopped. The
// loop records who ran what as an event (never the environment).
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	name, err := nameOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.cfg.Loop == nil {
		s.writeError(w, r, errorf(http.StatusServiceUnavailable, "this server runs no control loop"))
		return
	}
	var req api.ExecRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, api.MaxExecCommand+4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, "exec body: %v", err))
		return
	}
	if len(req.Command) == 0 {
		s.writeError(w, r, badField("command", "is required"))
		return
	}
	if req.TimeoutSeconds < 0 || req.TimeoutSeconds > api.MaxExecTimeout {
		s.writeError(w, r, badField("timeoutSeconds", "must be 0-%d", api.MaxExecTimeout))
		return
	}
	if err := s.runsSomewhere(r.Context(), name, req.Node); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.By = TokenName(r.Context())
	rc := http.NewResponseController(w)
	ctx, cancel := streamContext(r)
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": streaming\n\n")
	rc.Flush()
	var mu sync.Mutex
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		rc.Flush()
	}
	stop := keepalive(w, rc, &mu, 15*time.Second)
	defer stop()
	_ = rc.SetWriteDeadline(time.Time{}) // a command may run for hours
	node, code, err := s.cfg.Loop.Exec(ctx, name, req, func(l api.ExecLine) { send("line", l) })
	end := api.ExecEnd{Node: node, ExitCode: code}
	if err != nil {
		end.Error = err.Error()
	}
	if ctx.Err() == nil {
		send("end", end)
	}
}
