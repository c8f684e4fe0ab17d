package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// Defaults of StreamConfig.
const (
	DefaultStreamPoll      = 200 * time.Millisecond
	DefaultStreamHeartbeat = 15 * time.Second
)

// streamBatch is how many stored lines one store read returns while
// streaming.
const streamBatch = 1000

// StreamConfig tunes GET /api/v1/rollouts/{id}/logs/stream.
type StreamConfig struct {
	// Poll is how often the store is read for new lines and the rollout's
	// state (default DefaultStreamPoll). Following the store, not this
	// process's memory, lets every control plane sharing a database serve
	// every rollout.
	Poll time.Duration
	// Heartbeat is how long the stream may stay silent before a
	// ": keepalive" comment is sent (default DefaultStreamHeartbeat).
	Heartbeat time.Duration
}

// streamAfter returns where a log stream starts: the Last-Event-ID header
// (a reconnecting EventSource) wins over ?after=.
func streamAfter(r *http.Request) (int64, error) {
	if v, ok := r.Header["Last-Event-Id"]; ok {
		s := ""
		if len(v) > 0 {
			s = strings.TrimSpace(v[0])
		}
		if s == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, badField("Last-Event-ID", "must be a non-negative integer")
		}
		return n, nil
	}
	return intParam(r, "after", 0)
}

// logStream serves a rollout's log as Server-Sent Events: the stored lines
// after the start point, then new lines as the store gets them, then an
// "end" event once the rollout is done and every line was sent.
func (s *Server) logStream(w http.ResponseWriter, r *http.Request) {
	if err := s.streamLogs(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

// streamLogs returns an error only before the stream started (the answer
// is then an ordinary JSON error).
func (s *Server) streamLogs(w http.ResponseWriter, r *http.Request) error {
	rs, err := s.rolloutStore()
	if err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	if err := store.CheckRolloutID(id); err != nil {
		return err
	}
	after, err := streamAfter(r)
	if err != nil {
		return err
	}
	ctx, cancel := streamContext(r)
	defer cancel()
	ro, err := rs.GetRollout(ctx, id)
	if err != nil {
		return err
	}
	poll, beat := s.cfg.Stream.Poll, s.cfg.Stream.Heartbeat
	if poll <= 0 {
		poll = DefaultStreamPoll
	}
	if beat <= 0 {
		beat = DefaultStreamHeartbeat
	}
	ls := &logStreamer{s: s, r: r, w: w, rc: http.NewResponseController(w), rs: rs, id: id, after: after, beat: beat}
	if !ls.start() {
		return nil
	}
	ls.heartbeat = time.NewTimer(beat)
	defer ls.heartbeat.Stop()
	for {
		// The state is read before the lines: when it says done, every
		// line stored before it changed is sent before the end event.
		done := ro.Done()
		if !ls.sendStored(ctx) {
			return nil
		}
		if done {
			data, _ := json.Marshal(api.StreamEnd{State: ro.State, Message: ro.Message})
			ls.send(fmt.Appendf(nil, "event: end\ndata: %s\n\n", data))
			return nil
		}
		if !ls.idle(ctx, poll) {
			return nil
		}
		if ro, err = rs.GetRollout(ctx, id); err != nil {
			s.streamFailed(r, id, err)
			return nil
		}
	}
}

// logStreamer writes one rollout's log stream once it started.
type logStreamer struct {
	s     *Server
	r     *http.Request
	w     http.ResponseWriter
	rc    *http.ResponseController
	rs    store.Rollouts
	id    string
	after int64 // the seq of the last line sent
	// beat is how long the stream may stay silent; heartbeat fires then.
	beat      time.Duration
	heartbeat *time.Timer
	buf       []byte
}

// extend gives the next write its own deadline: the stream outlives
// Serve's WriteTimeout (ignored where unsupported, as in tests).
func (ls *logStreamer) extend() { _ = ls.rc.SetWriteDeadline(time.Now().Add(WriteTimeout)) }

// start writes the headers; false when the client cannot be written to.
func (ls *logStreamer) start() bool {
	h := ls.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	ls.extend()
	ls.w.WriteHeader(http.StatusOK)
	if err := ls.rc.Flush(); err != nil {
		ls.s.log.Debug("log stream: flush", "rollout", ls.id, "err", err)
		return false
	}
	return true
}

// send writes b and flushes it; false when the client is gone.
func (ls *logStreamer) send(b []byte) bool {
	ls.extend()
	if _, err := ls.w.Write(b); err != nil {
		return false
	}
	if err := ls.rc.Flush(); err != nil {
		return false
	}
	ls.heartbeat.Reset(ls.beat)
	return true
}

// sendStored sends every stored line after ls.after, in batches; false
// when the stream must end.
func (ls *logStreamer) sendStored(ctx context.Context) bool {
	for {
		lines, err := ls.rs.Logs(ctx, ls.id, ls.after, streamBatch)
		if err != nil {
			ls.s.streamFailed(ls.r, ls.id, err)
			return false
		}
		if len(lines) == 0 {
			return true
		}
		ls.buf = ls.buf[:0]
		for _, l := range lines {
			data, err := json.Marshal(l)
			if err != nil {
				ls.s.streamFailed(ls.r, ls.id, err)
				return false
			}
			ls.buf = fmt.Appendf(ls.buf, "id: %d\nevent: line\ndata: %s\n\n", l.Seq, data)
			ls.after = l.Seq
		}
		if !ls.send(ls.buf) {
			return false
		}
		if len(lines) < streamBatch {
			return true
		}
	}
}

// idle waits poll, sending keepalives while the stream is silent; false
// when the stream must end.
func (ls *logStreamer) idle(ctx context.Context, poll time.Duration) bool {
	wait := time.NewTimer(poll)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-ls.heartbeat.C:
			if !ls.send([]byte(": keepalive\n\n")) {
				return false
			}
		case <-wait.C:
			return true
		}
	}
}

// streamFailed logs why a started stream stops early; the client
// reconnects with Last-Event-ID and gets an ordinary answer.
func (s *Server) streamFailed(r *http.Request, id string, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Warn("log stream stopped", "rollout", id, "err", err)
}
