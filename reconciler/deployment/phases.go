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
	// traffic away from the node. When the rollout runs spec.release, it
	// runs in two parts (buildPart, startPart) with the release between.
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

// buildPart is the prepare phase up to its start: fetch, build and test,
// install (the whole prepare phase when it starts no slot).
func (ph phases) buildPart() []Action {
	for i, a := range ph.prepare {
		if a.Type == ActStart {
			return ph.prepare[:i]
		}
	}
	return ph.prepare
}

// startPart is the rest of the prepare phase: start and health check of
// the idle slot.
func (ph phases) startPart() []Action { return ph.prepare[len(ph.buildPart()):] }

// wholePrepare is the whole prepare phase.
func (ph phases) wholePrepare() []Action { return ph.prepare }

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
	pr := &phaseRun{r: r, p: p, rec: rec, ph: make([]phases, len(p.targets))}
	p.actErrs = make([]error, len(p.targets))
	for _, i := range pending {
		n := p.runs[i]
		n.log = func(stream, text string) { logs.Add(n.node, stream, text) }
		pr.ph[i] = splitPlan(p.plans[i])
	}
	// With spec.build.on one, one node builds and the others receive
	// its archive: the source prepares first.
	preparing := pending
	if len(pending) > 0 {
		if pr.ship = pr.planShipment(p.runs[pending[0]].spec, pending, logs); pr.ship != nil {
			defer pr.ship.cleanup()
			preparing = sourceFirst(pending, pr.ship.src)
		}
	}
	if p.release == nil {
		pr.prepareAll(ctx, preparing, s.MaxParallel, phases.wholePrepare, true)
	} else {
		// spec.release runs once between the build part on every node and
		// the start part (start and health check of the new slot): no
		// node starts the new revision before its release command ran.
		pr.prepareAll(ctx, preparing, s.MaxParallel, phases.buildPart, false)
		if !pr.failed() && ctx.Err() == nil {
			pr.release(ctx, pending)
		}
		if !pr.failed() && ctx.Err() == nil {
			pr.startsRan = true
			pr.prepareAll(ctx, pending, s.MaxParallel, phases.startPart, true)
		}
	}
	var order []int // the nodes that may switch: those that prepared
	for _, i := range pending {
		if p.actErrs[i] == nil {
			order = append(order, i)
		}
	}
	switched := pr.switchAll(ctx, order, max(s.MaxUnavailable, 1))

	// Nothing half-prepared stays behind: a node that prepared but did
	// not switch (another failed, or the rollout was superseded or ran
	// out of its deadline) stops its new slot; its old one still serves.
	for _, i := range order {
		if !switched[i] {
			if p.release != nil && !pr.startsRan {
				rec.NodeState(p.runs[i].node, api.RolloutCancelled) // it started nothing
				continue
			}
			r.unprepare(ctx, p.runs[i], pr.ph[i], rec)
		}
	}
	return pr.failedNode, pr.failure
}

// phaseRun is one runPhases: the nodes' phases and the first revision
// failure.
type phaseRun struct {
	r   *Reconciler
	p   *rolloutPlan
	rec *rolloutlog.Recorder
	ph  []phases
	// startsRan: the start part of the prepare phase ran (a rollout
	// with a release command stops before it when the release fails).
	startsRan bool
	// ship is the release built once and shipped (spec.build.on one), or nil.
	ship *shipment

	mu         sync.Mutex
	failure    error
	failedNode string
}

// fail records node i's failure. A node that fails for an infrastructure
// reason is waited for; the others go on. The first revision failure
// ends the rollout.
func (pr *phaseRun) fail(i int, err error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.p.actErrs[i] = err
	if pr.failure == nil && !infraError(err) {
		pr.failure, pr.failedNode = err, pr.p.runs[i].node
	}
}

func (pr *phaseRun) failed() bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.failure != nil
}

// prepareAll runs part of every pending node's prepare phase at once
// (the whole phase, or its build or start part), at most maxParallel at a
// time (0: all): the nodes start in their order (by name), the next one
// when a node finished its part. A node that failed before is left out;
// last says the part ends the prepare phase.
func (pr *phaseRun) prepareAll(ctx context.Context, pending []int, maxParallel int, part func(phases) []Action, last bool) {
	var preparing []int
	for _, i := range pending {
		if len(part(pr.ph[i])) > 0 && pr.p.actErrs[i] == nil {
			preparing = append(preparing, i)
		}
	}
	limit := maxParallel
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
				n := pr.p.runs[i]
				pr.rec.NodeState(n.node, api.RolloutRunning)
				var err error
				if !pr.startsRan { // the build part (or the whole prepare) receives the shipped release
					err = pr.awaitShipment(ctx, i)
				}
				if err == nil {
					err = pr.r.runSteps(ctx, n, part(pr.ph[i]), pr.rec)
				}
				if err != nil {
					pr.rec.NodeState(n.node, api.RolloutFailed)
					pr.fail(i, err)
					pr.sourceFailed(i, err)
					continue
				}
				if !last {
					continue
				}
				n.logf("prepared: the %s slot is healthy; it serves once its switch batch runs", pr.ph[i].startedSlot())
			}
		}()
	}
	wg.Wait()
}

// switchAll switches the nodes in order, batch at a time, unless a node
// failed for a revision reason; each node's finish runs in the
// background while the next batch switches. It returns once every finish
// ended, with the nodes that switched (or tried to).
func (pr *phaseRun) switchAll(ctx context.Context, order []int, batch int) []bool {
	switched := make([]bool, len(pr.p.targets))
	var finishing sync.WaitGroup
	for start := 0; start < len(order) && !pr.failed() && ctx.Err() == nil; start += batch {
		var bw sync.WaitGroup
		for _, i := range order[start:min(start+batch, len(order))] {
			switched[i] = true
			bw.Add(1)
			go func() {
				defer bw.Done()
				if pr.swap(ctx, i) {
					finishing.Add(1) // before bw.Done: the Wait below sees it
					go func() {
						defer finishing.Done()
						pr.finish(ctx, i)
					}()
				}
			}()
		}
		bw.Wait()
	}
	finishing.Wait()
	return switched
}

// swap runs node i's switch phase; it reports whether a finish phase
// follows.
func (pr *phaseRun) swap(ctx context.Context, i int) bool {
	n, ph := pr.p.runs[i], pr.ph[i]
	if len(ph.prepare) == 0 {
		pr.rec.NodeState(n.node, api.RolloutRunning)
	}
	if err := pr.r.runSteps(ctx, n, ph.swap, pr.rec); err != nil {
		pr.rec.NodeState(n.node, api.RolloutFailed)
		pr.fail(i, err)
		return false
	}
	if len(ph.finish) == 0 {
		pr.rec.NodeState(n.node, api.RolloutSucceeded)
		return false
	}
	return true
}

// finish runs node i's finish phase (drain and stop of the old slot,
// prune, certificates).
func (pr *phaseRun) finish(ctx context.Context, i int) {
	n := pr.p.runs[i]
	if err := pr.r.runSteps(ctx, n, pr.ph[i].finish, pr.rec); err != nil {
		pr.rec.NodeState(n.node, api.RolloutFailed)
		pr.fail(i, err)
		return
	}
	pr.rec.NodeState(n.node, api.RolloutSucceeded)
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
