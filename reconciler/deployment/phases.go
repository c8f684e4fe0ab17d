package deployment

import (
	"context"
	"fmt"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/rolloutlog"
)

// phases is a node's plan split at its switch (splitPlan).
type phases struct {
	// prepare comes before the switch: fetch, build and test, install,
	// start and health check of the idle slot. Nothing in it takes
	// traffic away from the node.
	prepare []Action
	// swap is the switch itself; for a plan without a switch (drift
	// repairs of the serving slot, a removal) the whole plan, since it
	// touches what serves.
	swap []Action
	// finish follows the switch: drain and stop of the old slot, prune,
	// certificates and the site. It runs in the background: the next
	// switch batch does not wait for it.
	finish []Action
}

// splitPlan divides a node's plan at its switch.
func splitPlan(plan []Action) phases {
	for i, a := range plan {
		if a.Type == ActSwitch {
			return phases{prepare: plan[:i], swap: plan[i : i+1], finish: plan[i+1:]}
		}
	}
	return phases{swap: plan}
}

// startedSlot returns the slot a prepare phase starts ("": none).
func (ph phases) startedSlot() string {
	for _, a := range ph.prepare {
		if a.Type == ActStart {
			return a.Slot
		}
	}
	return ""
}

// runPhases runs the pending nodes' plans in two phases. First every node
// prepares at once (at most strategy.maxParallel at a time, 0: all).
// Then, if no node failed to prepare for a revision reason, the switches
// run strategy.maxUnavailable nodes at a time; each node's finish (drain
// and stop of the old slot, prune, certificates) runs in the background
// while the next batch switches, and runPhases returns once every finish
// ended.
//
// A revision failure while preparing switches no node: the idle slots
// the other nodes started are stopped again and the old version keeps
// serving everywhere. An infrastructure failure of a node (issue 17's
// class) does not hold the others back: they switch, and the node is
// waited for (p.actErrs records every node's failure). A revision failure
// while switching or finishing ends the rollout after the batch it
// happened in; the nodes that did not switch stop their prepared slot.
// It returns the node of the first revision failure and that failure.
func (r *Reconciler) runPhases(ctx context.Context, s api.Strategy, p *rolloutPlan, pending []int, logs *rolloutlog.Sink, rec *rolloutlog.Recorder) (failedNode string, failure error) {
	p.actErrs = make([]error, len(p.targets))
	var mu sync.Mutex
	fail := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		p.actErrs[i] = err
		// A node that fails for an infrastructure reason is waited
		// for; the others go on.
		if failure == nil && !infraError(err) {
			failure, failedNode = err, p.runs[i].node
		}
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return failure != nil
	}
	ph := make([]phases, len(p.targets))
	for _, i := range pending {
		n := p.runs[i]
		n.log = func(stream, text string) { logs.Add(n.node, stream, text) }
		ph[i] = splitPlan(p.plans[i])
	}

	// Prepare every node at once, at most maxParallel at a time: the
	// nodes start in their order (by name), the next one when a node
	// finished its prepare.
	var preparing []int
	for _, i := range pending {
		if len(ph[i].prepare) > 0 {
			preparing = append(preparing, i)
		}
	}
	limit := s.MaxParallel
	if limit <= 0 || limit > len(preparing) {
		limit = len(preparing)
	}
	next := make(chan int)
	go func() {
		defer close(next)
		for _, i := range preparing {
			next <- i
		}
	}()
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				n := p.runs[i]
				rec.NodeState(n.node, api.RolloutRunning)
				if err := r.runSteps(ctx, n, ph[i].prepare, rec); err != nil {
					rec.NodeState(n.node, api.RolloutFailed)
					fail(i, err)
					continue
				}
				n.logf("prepared: the %s slot is healthy; it serves once its switch batch runs", ph[i].startedSlot())
			}
		}()
	}
	wg.Wait()

	// Switch, maxUnavailable nodes at a time; finish in the background.
	switched := make([]bool, len(p.targets))
	var finishing sync.WaitGroup
	batch := max(s.MaxUnavailable, 1)
	var order []int
	for _, i := range pending {
		if p.actErrs[i] == nil {
			order = append(order, i)
		}
	}
	for start := 0; start < len(order) && !failed() && ctx.Err() == nil; start += batch {
		var bw sync.WaitGroup
		for _, i := range order[start:min(start+batch, len(order))] {
			switched[i] = true
			bw.Add(1)
			go func() {
				defer bw.Done()
				n := p.runs[i]
				if len(ph[i].prepare) == 0 {
					rec.NodeState(n.node, api.RolloutRunning)
				}
				if err := r.runSteps(ctx, n, ph[i].swap, rec); err != nil {
					rec.NodeState(n.node, api.RolloutFailed)
					fail(i, err)
					return
				}
				if len(ph[i].finish) == 0 {
					rec.NodeState(n.node, api.RolloutSucceeded)
					return
				}
				finishing.Add(1) // before bw.Done: the Wait below sees it
				go func() {
					defer finishing.Done()
					if err := r.runSteps(ctx, n, ph[i].finish, rec); err != nil {
						rec.NodeState(n.node, api.RolloutFailed)
						fail(i, err)
						return
					}
					rec.NodeState(n.node, api.RolloutSucceeded)
				}()
			}()
		}
		bw.Wait()
	}
	finishing.Wait()

	// Nothing half-prepared stays behind: a node that prepared but did
	// not switch (another failed, or the rollout was superseded or ran
	// out of its deadline) stops its new slot; its old one still serves.
	for _, i := range order {
		if !switched[i] {
			r.unprepare(ctx, p.runs[i], ph[i], rec)
		}
	}
	return failedNode, failure
}

// unprepare stops the slot a node's prepare phase started, when the
// rollout ends before that node switched.
func (r *Reconciler) unprepare(ctx context.Context, n *nodeRun, ph phases, rec *rolloutlog.Recorder) {
	if len(ph.prepare) == 0 {
		return // a plan without a switch: nothing ran on this node
	}
	slot := ph.startedSlot()
	if slot == "" || (n.obs.State != nil && n.obs.State.Active == slot) {
		rec.NodeState(n.node, api.RolloutCancelled)
		return
	}
	n.logf("the rollout ends before this node switched: stopping the prepared %s slot (the old version keeps serving)", slot)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	a := Action{Type: ActStop, Slot: slot, Reason: "the rollout ended before this node switched"}
	idx := rec.StepStart(n.node, a.String())
	err := n.stop(cctx, r.runtimeFor(n.spec), slot)
	rec.StepEnd(n.node, idx, err)
	if err != nil {
		n.log(api.StreamBakery, fmt.Sprintf("stopping the prepared %s slot: %v", slot, err))
	}
	rec.NodeState(n.node, api.RolloutCancelled)
}
