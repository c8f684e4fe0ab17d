package server

import (
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

	rc := http.NewResponseController(w)
	// The stream outlives Serve's WriteTimeout; each write gets its own
	// deadline instead (ignored where unsupported, as in tests).
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(WriteTimeout)) }
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	extend()
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		s.log.Debug("log stream: flush", "rollout", id, "err", err)
		return nil
	}

	heartbeat := time.NewTimer(beat)
	defer heartbeat.Stop()
	send := func(b []byte) bool {
		extend()
		if _, err := w.Write(b); err != nil {
			return false
		}
		if err := rc.Flush(); err != nil {
			return false
		}
		heartbeat.Reset(beat)
		return true
	}
	var buf []byte
	for {
		// The state is read before the lines: when it says done, every
		// line stored before it changed is sent before the end event.
		done := ro.Done()
		for {
			lines, err := rs.Logs(ctx, id, after, streamBatch)
			if err != nil {
				s.streamFailed(r, id, err)
				return nil
			}
			if len(lines) == 0 {
				break
			}
			buf = buf[:0]
			for _, l := range lines {
				data, err := json.Marshal(l)
				if err != nil {
					s.streamFailed(r, id, err)
					return nil
				}
				buf = fmt.Appendf(buf, "id: %d\nevent: line\ndata: %s\n\n", l.Seq, data)
				after = l.Seq
			}
			if !send(buf) {
				return nil
			}
			if len(lines) < streamBatch {
				break
			}
		}
		if done {
			data, _ := json.Marshal(api.StreamEnd{State: ro.State, Message: ro.Message})
			send(fmt.Appendf(nil, "event: end\ndata: %s\n\n", data))
			return nil
		}
		wait := time.NewTimer(poll)
	idle:
		for {
			select {
			case <-ctx.Done():
				wait.Stop()
				return nil
			case <-heartbeat.C:
				if !send([]byte(": keepalive\n\n")) {
					wait.Stop()
					return nil
				}
			case <-wait.C:
				break idle
			}
		}
		if ro, err = rs.GetRollout(ctx, id); err != nil {
			s.streamFailed(r, id, err)
			return nil
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
