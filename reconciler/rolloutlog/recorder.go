package rolloutlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/sshexec"
)

// Recorder keeps a rollout record up to date in the store, node by node
// and step by step.
type Recorder struct {
	Store   store.Rollouts
	Rollout *api.Rollout
	// AfterStep, if set, is called after each step ended (outside the lock).
	AfterStep func()

	mu      sync.Mutex
	started map[string]time.Time // node/step index → monotonic start
}

func (r *Recorder) save() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.Store.UpdateRollout(ctx, r.Rollout)
}

func (r *Recorder) node(name string) *api.RolloutNode {
	for i := range r.Rollout.Nodes {
		if r.Rollout.Nodes[i].Node == name {
			return &r.Rollout.Nodes[i]
		}
	}
	r.Rollout.Nodes = append(r.Rollout.Nodes, api.RolloutNode{Node: name})
	return &r.Rollout.Nodes[len(r.Rollout.Nodes)-1]
}

// NodeState records node's state in the rollout.
func (r *Recorder) NodeState(node, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.node(node).State = state
	r.save()
}

// StepStart records that step name started on node; it returns the
// step's index for StepEnd.
func (r *Recorder) StepStart(node, name string) int {
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

// StepEnd records how step idx on node ended (err nil: succeeded).
func (r *Recorder) StepEnd(node string, idx int, err error) {
	if r.AfterStep != nil {
		defer r.AfterStep() // runs after the unlock below
	}
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

// SetRelease records what the rollout did with spec.release.
func (r *Recorder) SetRelease(rr *api.ReleaseRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Rollout.Release = rr
	r.save()
}

// Finish records the rollout's final state and message.
func (r *Recorder) Finish(state, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Rollout.State = state
	r.Rollout.Message = msg
	r.Rollout.FinishedAt = api.Now()
	r.save()
}
