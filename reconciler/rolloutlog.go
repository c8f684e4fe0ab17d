package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/sshexec"
)

// logSink numbers a rollout's log lines across all nodes and appends them
// to the store in batches from its own goroutine, so that a slow store
// never blocks the SSH readers for long. Values listed in mask (the app's
// environment) are replaced by *** before anything is stored.
type logSink struct {
	st      store.Rollouts
	id      string
	log     *slog.Logger
	mask    *strings.Replacer
	mu      sync.Mutex
	seq     int64
	buf     []api.LogLine
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	close   sync.Once
}

const logBatch = 500

func newLogSink(st store.Rollouts, id string, log *slog.Logger, secrets ...string) *logSink {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 4 {
			pairs = append(pairs, s, "***")
		}
	}
	s := &logSink{st: st, id: id, log: log, mask: strings.NewReplacer(pairs...), wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go s.loop()
	return s
}

// Add appends one line.
func (s *logSink) Add(node, stream, text string) {
	s.mu.Lock()
	s.seq++
	s.buf = append(s.buf, api.LogLine{Seq: s.seq, Node: node, Stream: stream, Time: api.Now(), Text: s.mask.Replace(text)})
	full := len(s.buf) >= logBatch
	s.mu.Unlock()
	if full {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// LastSeq returns the sequence number of the last line added.
func (s *logSink) LastSeq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

func (s *logSink) loop() {
	defer close(s.stopped)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			s.flush()
			return
		case <-t.C:
		case <-s.wake:
		}
		s.flush()
	}
}

func (s *logSink) flush() {
	s.mu.Lock()
	lines := s.buf
	s.buf = nil
	s.mu.Unlock()
	if len(lines) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.st.AppendLogs(ctx, s.id, lines); err != nil {
		s.log.Error("storing rollout log lines", "rollout", s.id, "lines", len(lines), "err", err)
	}
}

// Close flushes what is left and stops the sink. It is safe to call twice.
func (s *logSink) Close() {
	s.close.Do(func() { close(s.done) })
	<-s.stopped
}

// rolloutRecorder keeps a rollout record up to date in the store.
type rolloutRecorder struct {
	store   store.Rollouts
	mu      sync.Mutex
	ro      *api.Rollout
	started map[string]time.Time // node/step index → monotonic start
}

func (r *rolloutRecorder) save() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.store.UpdateRollout(ctx, r.ro)
}

func (r *rolloutRecorder) node(name string) *api.RolloutNode {
	for i := range r.ro.Nodes {
		if r.ro.Nodes[i].Node == name {
			return &r.ro.Nodes[i]
		}
	}
	r.ro.Nodes = append(r.ro.Nodes, api.RolloutNode{Node: name})
	return &r.ro.Nodes[len(r.ro.Nodes)-1]
}

func (r *rolloutRecorder) nodeState(node, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.node(node).State = state
	r.save()
}

func (r *rolloutRecorder) stepStart(node, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.node(node)
	n.Steps = append(n.Steps, api.RolloutStep{Name: name, Start: api.Now()})
	if r.started == nil {
		r.started = map[string]time.Time{}
	}
	idx := len(n.Steps) - 1
	r.started[fmt.Sprintf("%s/%d", node, idx)] = time.Now()
	r.save()
	return idx
}

func (r *rolloutRecorder) stepEnd(node string, idx int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.node(node).Steps[idx]
	st.End = api.Now()
	if t0, ok := r.started[fmt.Sprintf("%s/%d", node, idx)]; ok {
		st.DurationMillis = max(time.Since(t0).Milliseconds(), 1)
	}
	st.Result = api.RolloutSucceeded
	if err != nil {
		st.Result = api.RolloutFailed
		st.Message = err.Error()
		var ee *sshexec.ExitError
		if errors.As(err, &ee) {
			st.ExitCode = ee.Code
		}
	}
	r.save()
}

func (r *rolloutRecorder) finish(state, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ro.State = state
	r.ro.Message = msg
	r.ro.FinishedAt = api.Now()
	r.save()
}
