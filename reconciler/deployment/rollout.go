package deployment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/rolloutlog"
)

type rolloutPlan struct {
	targets []target
	runs    []*nodeRun
	plans   [][]Action
	// errs are the observation (or planning) errors per target: such a
	// node is waited for (status.waiting).
	errs []error
	// actErrs are the failed steps per target in this reconcile's
	// rollout (*stepError).
	actErrs  []error
	commit   string
	revision int64
	specHash string
	trigger  string
	// by is who asked for the rollout (Rollout.TriggeredBy).
	by string
	// deployRequest is the id of the deploy request the rollout carries
	// out ("": none), cleared when it starts.
	deployRequest string
	// rerunRelease: the deploy request asks to run spec.release even if
	// it ran for the commit before.
	rerunRelease bool
	// release is set when this rollout runs spec.release (planRelease).
	release *releasePlan
	// request is the id of the action request the rollout carries out
	// (Rollout.Request; "": none).
	request string
	missing []string
	restart string // the restart request carried out, if any
	// repairOf, when set, is the failed attempt that stands while this
	// rollout repairs drift of the last good revision: it neither clears
	// the failure nor marks the deployment Ready.
	repairOf *api.FailedAttempt
	secrets  []string // values from secrets, masked in the log
}

func newRolloutID(app string, revision int64) string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", app, revision, hex.EncodeToString(b))
}

// repairMessage says which revision a repair rollout (p.repairOf set)
// repairs and which failed attempt stands.
func repairMessage(p rolloutPlan) string {
	return fmt.Sprintf("drift repair of revision %d (commit %s) while the failed attempt at commit %s stands",
		p.revision, api.ShortCommit(p.commit), api.ShortCommit(p.repairOf.Commit))
}

// runNode executes a node's whole plan in order, recording the node's
// state in the rollout.
func (r *Reconciler) runNode(ctx context.Context, n *nodeRun, plan []Action, rec *rolloutlog.Recorder) error {
	rec.NodeState(n.node, api.RolloutRunning)
	if err := r.runSteps(ctx, n, plan, rec); err != nil {
		rec.NodeState(n.node, api.RolloutFailed)
		return err
	}
	rec.NodeState(n.node, api.RolloutSucceeded)
	return nil
}

// runSteps executes steps of a node's plan in order, each recorded in the
// rollout. A failed step after the new slot was started stops that slot
// again, so the old one keeps serving alone.
func (r *Reconciler) runSteps(ctx context.Context, n *nodeRun, steps []Action, rec *rolloutlog.Recorder) error {
	rt, ing := r.runtimeFor(n.spec), r.ingress()
	for _, a := range steps {
		n.logf("step %s", a)
		idx := rec.StepStart(n.node, a.String())
		err := n.act(ctx, rt, ing, a)
		rec.StepEnd(n.node, idx, err)
		if err != nil {
			n.log(api.StreamBakery, fmt.Sprintf("step %s failed: %v", a.Type, err))
			if (a.Type == ActStart || a.Type == ActHealth) && (n.obs.State == nil || n.obs.State.Active != a.Slot) {
				// Take the unhealthy new slot down; the active slot was never
				// touched. (A drift repair of the active slot that failed or
				// was superseded leaves it as it is: stopping it could only
				// take down what still serves.)
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				if serr := rt.Stop(cctx, n, a.Slot); serr != nil {
					n.logf("stopping the failed %s slot: %v", a.Slot, serr)
				}
				cancel()
			}
			return &stepError{step: a.Type, class: ClassifyFailure(a.Type, err), err: err}
		}
	}
	return nil
}

// waiting lists the nodes the deployment waits for, each with its error:
// those that could not be observed and those whose step failed for an
// infrastructure reason (ClassifyFailure).
func (p *rolloutPlan) waiting() (nodes []string, errs []error) {
	for i, t := range p.targets {
		err := p.errs[i]
		if err == nil && p.actErrs != nil && infraError(p.actErrs[i]) {
			err = p.actErrs[i]
		}
		if err != nil {
			nodes = append(nodes, t.node.Metadata.Name)
			errs = append(errs, err)
		}
	}
	return nodes, errs
}

// waitReason returns the condition reason and message of a wait for
// nodes: NodeDiskFull when a node's disk is full, else WaitingForNode.
func waitReason(nodes []string, errs []error) (reason, msg string) {
	reason = ReasonWaitingForNode
	var parts []string
	for i, err := range errs {
		what := "node " + nodes[i]
		if diskFull(err) {
			reason, what = ReasonNodeDiskFull, what+" (disk full)"
		}
		parts = append(parts, what+": "+err.Error())
	}
	return reason, "waiting for " + strings.Join(parts, "; ")
}

// pending lists the nodes (indexes) with something to do.
func (p *rolloutPlan) pending() []int {
	var out []int
	for i := range p.targets {
		if len(p.plans[i]) > 0 && p.errs[i] == nil {
			out = append(out, i)
		}
	}
	return out
}

// rolloutEnd is how a rollout ended, as the status, the events and the
// reconcile's result say it.
type rolloutEnd struct {
	ro                 *api.Rollout
	state, reason, msg string
	failedNode         string
	lastLogSeq         int64
	certErr            *certError // a certificate step failed
	prevProgressing    *api.Condition
	// waitNodes are the nodes a rollout that goes on (state running)
	// waits for, waitErr their errors.
	waitNodes []string
	waitErr   error
}

// rollout is the act step: it executes the plans, every node preparing
// at once and the switches node batch by node batch
// (strategy.maxUnavailable at once; runPhases), recording the rollout and
// its log, and records how it ended in o.
func (r *Reconciler) rollout(ctx context.Context, d *api.Deployment, p *rolloutPlan, o *outcome) (reconciler.Result, error) {
	name := d.Metadata.Name
	var prevProgressing *api.Condition
	if c := api.FindCondition(d.Status.Conditions, api.ConditionProgressing); c != nil {
		cp := *c
		prevProgressing = &cp
	}
	ro, lastSeq := r.resumeRollout(ctx, d, p)
	if ro == nil {
		var err error
		if ro, err = r.startRollout(ctx, d, p); err != nil {
			return reconciler.Result{}, err
		}
	}
	logs := rolloutlog.NewSink(r.Store, ro.ID, r.log(), append(envValues(&d.Spec), p.secrets...)...)
	logs.StartAfter(lastSeq)
	defer logs.Close()
	rec := &rolloutlog.Recorder{Store: r.Store, Rollout: ro, AfterStep: r.logPosition(ctx, name, ro.ID, logs)}
	if err := r.markStarted(ctx, d, p, ro, lastSeq > 0); err != nil {
		return reconciler.Result{}, err
	}

	dctx, cancel := context.WithTimeout(ctx, d.Spec.ProgressDeadline.Duration)
	defer cancel()
	pending := p.pending()
	r.planRelease(ctx, d, p, ro, pending, rec)
	r.unitUnhealthyEvents(ctx, name, ro.ID, *p, pending)
	failedNode, failure := r.runPhases(dctx, d.Spec.Strategy, p, pending, logs, rec)
	logs.Close()

	e := classify(ctx, dctx, d, p, failure, failedNode)
	e.ro, e.lastLogSeq, e.prevProgressing = ro, logs.LastSeq(), prevProgressing
	if e.state != api.RolloutRunning { // a rollout that waits for nodes goes on
		rec.Finish(e.state, e.msg)
	}
	if e.state == api.RolloutSucceeded {
		var done []string
		for _, i := range pending {
			if !p.targets[i].remove {
				done = append(done, p.targets[i].node.Metadata.Name)
			}
		}
		r.recordLastDeployment(context.WithoutCancel(ctx), name, p.commit, p.revision, done)
	}
	o.ending, o.plan, o.rollout = endRollout, p, e
	return r.rolloutResult(p, e, failure)
}

// startRollout creates the rollout's record. A rollout still marked
// running was interrupted (one reconcile per key runs at a time: nothing
// else can be running it): the control plane stopped or lost its lock.
// This rollout continues from what the nodes say.
func (r *Reconciler) startRollout(ctx context.Context, d *api.Deployment, p *rolloutPlan) (*api.Rollout, error) {
	name := d.Metadata.Name
	ro := &api.Rollout{ID: newRolloutID(name, p.revision), Deployment: name, Revision: p.revision, Trigger: p.trigger,
		Commit: p.commit, Generation: d.Metadata.Generation, TriggeredBy: p.by, Server: r.ServerID, State: api.RolloutRunning, CreatedAt: api.Now(),
		Request: p.request}
	ro.Spec = &d.DeepCopyObject().(*api.Deployment).Spec // what a rollback to this revision restores
	for i, t := range p.targets {
		if len(p.plans[i]) > 0 {
			ro.Nodes = append(ro.Nodes, api.RolloutNode{Node: t.node.Metadata.Name, State: api.RolloutPending})
		}
	}
	if err := r.Store.CreateRollout(ctx, ro); err != nil {
		return nil, fmt.Errorf("create rollout: %w", err)
	}
	if w := d.Status.Waiting; w != nil && w.Rollout != "" && d.Status.CurrentRollout != nil && d.Status.CurrentRollout.ID == w.Rollout {
		r.closeInterrupted(ctx, d, api.RolloutSuperseded, "superseded by "+ro.ID+" while it waited for "+strings.Join(w.Nodes, ", "))
	} else {
		r.closeInterrupted(ctx, d, api.RolloutCancelled, "interrupted before it finished (its control plane stopped or lost its lock); continued by "+ro.ID)
	}
	r.closeOrphans(ctx, d, ro.ID)
	return ro, nil
}

// waitingRollout returns the rollout that waits for nodes
// (status.waiting) when it is still running and rolls out what this
// reconcile does (commit, revision and generation); else nil.
func (r *Reconciler) waitingRollout(ctx context.Context, d *api.Deployment, p *rolloutPlan) *api.Rollout {
	w, cur := d.Status.Waiting, d.Status.CurrentRollout
	if w == nil || w.Rollout == "" || cur == nil || cur.ID != w.Rollout || cur.State != api.RolloutRunning {
		return nil
	}
	ro, err := r.Store.GetRollout(ctx, cur.ID)
	if err != nil || ro.Done() || ro.Commit != p.commit || ro.Revision != p.revision || ro.Generation != d.Metadata.Generation {
		return nil
	}
	return ro
}

// resumeRollout returns the rollout that waits for nodes (status.waiting)
// when this reconcile continues it — it is still running and rolls out
// the same commit, revision and generation — with the sequence number of
// its last log line; else nil. The nodes with something to do are marked
// pending again in its record.
func (r *Reconciler) resumeRollout(ctx context.Context, d *api.Deployment, p *rolloutPlan) (*api.Rollout, int64) {
	ro := r.waitingRollout(ctx, d, p)
	if ro == nil {
		return nil, 0
	}
	w, cur := d.Status.Waiting, d.Status.CurrentRollout
	for i, t := range p.targets {
		if len(p.plans[i]) == 0 {
			continue
		}
		name, found := t.node.Metadata.Name, false
		for j := range ro.Nodes {
			if ro.Nodes[j].Node != name {
				continue
			}
			found = true
			if ro.Trigger == api.TriggerRestart && ro.Nodes[j].State == api.RolloutSucceeded {
				// Restarted already: a restart plans a new slot on every
				// node, but each restarts once.
				p.plans[i] = nil
				continue
			}
			ro.Nodes[j].State = api.RolloutPending
		}
		if !found {
			ro.Nodes = append(ro.Nodes, api.RolloutNode{Node: name, State: api.RolloutPending})
		}
	}
	if err := r.Store.UpdateRollout(ctx, ro); err != nil {
		return nil, 0
	}
	r.closeOrphans(ctx, d, ro.ID)
	r.log().Info("continuing the rollout that waited for nodes", "deployment", d.Metadata.Name, "rollout", ro.ID, "waitedFor", w.Nodes)
	return ro, max(cur.LastLogSeq, 1)
}

// markStarted writes the rollout's start into the deployment's status (a
// progress write: clients follow the rollout from there) and clears the
// deploy request it carries out.
func (r *Reconciler) markStarted(ctx context.Context, d *api.Deployment, p *rolloutPlan, ro *api.Rollout, resumed bool) error {
	progressing := fmt.Sprintf("rolling out revision %d (commit %s)", p.revision, api.ShortCommit(p.commit))
	if resumed {
		var nodes []string
		for _, i := range p.pending() {
			nodes = append(nodes, p.targets[i].node.Metadata.Name)
		}
		progressing = fmt.Sprintf("continuing the rollout of revision %d (commit %s) on %s", p.revision, api.ShortCommit(p.commit), strings.Join(nodes, ", "))
	}
	if p.repairOf != nil {
		progressing = repairMessage(*p) + " (the failed attempt is not retried)"
	}
	return r.setStatus(ctx, d.Metadata.Name, func(s *api.DeploymentStatus) {
		s.CurrentRollout = &api.RolloutRef{ID: ro.ID, State: ro.State}
		clearDeployRequest(s, p.deployRequest)
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionTrue, Reason: ReasonRollingOut,
			Message: progressing, ObservedGeneration: d.Metadata.Generation})
	})
}

// logPosition returns what runs after every step: the deployment's
// status tells how far the log got (a progress write), so a client can
// start following from there.
func (r *Reconciler) logPosition(ctx context.Context, name, id string, logs *rolloutlog.Sink) func() {
	return func() {
		seq := logs.LastSeq()
		if err := r.setStatus(ctx, name, func(s *api.DeploymentStatus) {
			if s.CurrentRollout != nil && s.CurrentRollout.ID == id && s.CurrentRollout.LastLogSeq < seq {
				s.CurrentRollout.LastLogSeq = seq
			}
		}); err != nil {
			r.log().Debug("recording the log position", "deployment", name, "err", err)
		}
	}
}

// classify says how a rollout ended from its first failure: succeeded, a
// certificate that could not be had (the revision itself is out),
// superseded or cancelled (ctx ended), out of its progress deadline (dctx
// ended), or failed.
func classify(ctx, dctx context.Context, d *api.Deployment, p *rolloutPlan, failure error, failedNode string) *rolloutEnd {
	e := &rolloutEnd{state: api.RolloutSucceeded, reason: ReasonConverged, failedNode: failedNode}
	waitNodes, waitErrs := p.waiting()
	actFailed := failure != nil
	for _, err := range p.actErrs {
		actFailed = actFailed || err != nil
	}
	switch {
	case !actFailed && len(waitNodes) == 0:
	case errors.As(failure, &e.certErr) && ctx.Err() == nil && dctx.Err() == nil:
		e.state, e.reason, e.msg = api.RolloutFailed, ReasonCertificateFailed, fmt.Sprintf("node %s: %v", failedNode, failure)
		if e.certErr.renew {
			e.reason = ReasonCertificateRenewalFailed
		}
	case ctx.Err() != nil:
		e.state, e.reason, e.msg = api.RolloutSuperseded, ReasonSuperseded, "superseded by a newer spec or cancelled"
		if errors.Is(context.Cause(ctx), store.ErrLockLost) {
			e.msg = "stopped: this control plane lost its lock on the deployment (its database connection broke); the next reconcile continues from what the nodes say"
		}
	case actFailed && errors.Is(dctx.Err(), context.DeadlineExceeded):
		e.state, e.reason, e.msg = api.RolloutFailed, ReasonDeadlineExceeded, fmt.Sprintf("not finished within the progress deadline (%s)", d.Spec.ProgressDeadline.Duration)
	case errors.As(failure, new(*releaseError)) && ctx.Err() == nil:
		e.state, e.reason, e.msg = api.RolloutFailed, ReasonReleaseFailed, fmt.Sprintf("node %s: %v", failedNode, failure)
	case failure != nil:
		e.state, e.reason, e.msg = api.RolloutFailed, ReasonRolloutFailed, fmt.Sprintf("node %s: %v", failedNode, failure)
	default:
		// Only infrastructure failures: the rollout waits for those
		// nodes (it stays running) and the reconcile is retried.
		e.state = api.RolloutRunning
		e.reason, e.msg = waitReason(waitNodes, waitErrs)
		e.waitNodes, e.waitErr = waitNodes, errors.Join(waitErrs...)
		if p.repairOf != nil {
			// A drift repair does not wait: it ends failed and is
			// retried with backoff, the failed attempt standing.
			e.state, e.reason, e.failedNode = api.RolloutFailed, ReasonRolloutFailed, waitNodes[0]
		}
	}
	if p.repairOf != nil {
		e.msg = strings.TrimSuffix(repairMessage(*p)+": "+e.msg, ": ")
	}
	return e
}

// rolloutResult is what the controller does after a rollout: a failed
// repair is retried with backoff (the failed attempt stands either way),
// a missing certificate after CertRetry; a failed revision is not retried
// on its own (FailedAttempt), but resync still looks for a new commit.
func (r *Reconciler) rolloutResult(p *rolloutPlan, e *rolloutEnd, failure error) (reconciler.Result, error) {
	switch {
	case p.repairOf != nil && e.state == api.RolloutFailed:
		if failure == nil {
			failure = e.waitErr
		}
		return reconciler.Result{}, fmt.Errorf("%s: node %s: %w", repairMessage(*p), e.failedNode, failure)
	case e.certErr != nil && e.state == api.RolloutFailed:
		return reconciler.Result{RequeueAfter: r.certRetry()}, nil
	}
	switch e.state {
	case api.RolloutSucceeded:
		return reconciler.Result{RequeueAfter: r.resync()}, nil
	case api.RolloutRunning:
		// Waiting for nodes: retried with the controller's capped backoff.
		return reconciler.Result{}, e.waitErr
	case api.RolloutFailed:
		return reconciler.Result{RequeueAfter: r.resync()}, nil
	}
	return reconciler.Result{}, failure
}
