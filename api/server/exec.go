package server

import (
	"encoding/json"
	"fmt"
	"io"
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
	// The request's JSON is bounded; a terminal's frames that follow it
	// are not (they stream for as long as the session lasts).
	lim := &headLimit{r: r.Body, left: api.MaxExecCommand + 4096}
	dec := json.NewDecoder(lim)
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
	lim.left = -1
	if req.TTY {
		s.execTerminal(w, r, name, req, io.MultiReader(dec.Buffered(), r.Body))
		return
	}
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

// execTerminal serves an exec with "tty": true in the terminal protocol
// (api.TerminalContentType): the rest of the request body is the client's
// frames (keys typed, window sizes), the answer the server's (the
// terminal's output, then the end). Request and answer stream at once
// (full duplex).
func (s *Server) execTerminal(w http.ResponseWriter, r *http.Request, name string, req api.ExecRequest, body io.Reader) {
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		s.writeError(w, r, errorf(http.StatusInternalServerError, "no full-duplex stream: %v", err))
		return
	}
	ctx, cancel := streamContext(r)
	defer cancel()
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", api.TerminalContentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	var mu sync.Mutex
	out := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		for rest := p; len(rest) > 0; {
			n := min(len(rest), api.MaxFrame)
			if err := api.WriteFrame(w, api.FrameData, rest[:n]); err != nil {
				return 0, err
			}
			rest = rest[n:]
		}
		return len(p), rc.Flush()
	})
	stdin, keys := io.Pipe()
	resize := make(chan [2]int, 4)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(resize)
		for {
			typ, payload, err := api.ReadFrame(body)
			if err != nil {
				keys.CloseWithError(io.EOF)
				return
			}
			switch typ {
			case api.FrameData:
				if _, err := keys.Write(payload); err != nil {
					return
				}
			case api.FrameResize:
				if rows, cols, ok := api.ParseResize(payload); ok {
					select {
					case resize <- [2]int{rows, cols}:
					default:
					}
				}
			}
		}
	}()
	node, code, err := s.cfg.Loop.ExecTerminal(ctx, name, req, stdin, out, resize)
	_ = stdin.Close()
	end := api.ExecEnd{Node: node, ExitCode: code}
	if err != nil {
		end.Error = err.Error()
	}
	b, _ := json.Marshal(end)
	mu.Lock()
	_ = api.WriteFrame(w, api.FrameEnd, b)
	_ = rc.Flush()
	mu.Unlock()
	// The client ends its request once it read the end; nothing may read
	// the body after the handler returned.
	select {
	case <-readerDone:
	case <-time.After(10 * time.Second):
		_ = keys.CloseWithError(io.EOF)
	}
}

// writerFunc is an io.Writer of a function.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// headLimit fails a read beyond left bytes, until left is set to -1.
type headLimit struct {
	r    io.Reader
	left int64
}

func (h *headLimit) Read(p []byte) (int, error) {
	if h.left == 0 {
		return 0, errorf(http.StatusRequestEntityTooLarge, "exec body too large")
	}
	if h.left > 0 && int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	if h.left > 0 {
		h.left -= int64(n)
	}
	return n, err
}
