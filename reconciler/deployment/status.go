package deployment

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/nodescript"
)

// ending names how a reconcile ended, for the status it writes.
type ending int

const (
	endNothing           ending = iota // the status stays as it is
	endSuspended                       // spec.suspend: nothing is done
	endInvalid                         // the spec is invalid (Stalled)
	endSecretUnavailable               // a secret could not be read
	endSourceUnavailable               // the source commit could not be resolved
	endDeleting                        // the app could not be removed from every node yet
	endRepairConverged                 // converged while a failed attempt stands
	endConverged                       // every node runs the revision
	endWaiting                         // nothing to do on the nodes reached; others could not be observed
	endRollout                         // a rollout ran (o.rollout says how it ended)
)

// outcome is what a reconcile's steps found, from which finalizeStatus
// computes the status: the one place a reconcile's status is decided.
type outcome struct {
	gen    int64
	ending ending
	msg    string       // the problem, for the endings that have one
	plan   *rolloutPlan // the nodes observed and their plans
	// interrupted is the id of a rollout found still running and closed
	// as succeeded (the nodes were converged).
	interrupted string
	rollout     *rolloutEnd
	// deadline is spec.progressDeadline: how long nodes are waited for
	// before Degraded, and how long the nodes may run different versions
	// before MixedVersions.
	deadline time.Duration
	// now is the time the status is computed at.
	now time.Time
	// wait is what an endWaiting reconcile waits for.
	wait struct {
		rollout, reason, msg string
		nodes                []string
	}
	// mixedMsg, when set, is the MixedVersions warning to record.
	mixedMsg string
	// schedules are the spec's schedules; schedFailed the failed runs the
	// status shows for the first time (recorded as events).
	schedules   []api.Schedule
	schedFailed []schedFailure
}

// finalizeStatus writes the status the outcome says, once, at the end of
// the reconcile (nothing when the status is to stay as it is). A rollout
// that ended records how with a fresh context: a superseded rollout still
// does.
func (r *Reconciler) finalizeStatus(ctx context.Context, name string, o *outcome) error {
	if o.ending == endNothing {
		return nil
	}
	if o.rollout != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
	}
	return r.setStatus(ctx, name, o.apply)
}

// apply computes the status from the outcome.
func (o *outcome) apply(s *api.DeploymentStatus) {
	gen := o.gen
	switch o.ending {
	case endSuspended:
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: reconciler.ReasonSuspended, ObservedGeneration: gen})
	case endInvalid:
		s.ObservedGeneration = gen
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionTrue, Reason: reconciler.ReasonInvalidSpec, Message: o.msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: reconciler.ReasonInvalidSpec, Message: o.msg, ObservedGeneration: gen})
	case endSecretUnavailable:
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: ReasonSecretUnavailable, Message: o.msg, ObservedGeneration: gen})
	case endSourceUnavailable:
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: reconciler.ReasonSourceUnavailable, Message: o.msg, ObservedGeneration: gen})
	case endDeleting:
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionTrue, Reason: "Deleting", Message: o.msg, ObservedGeneration: gen})
	case endRepairConverged:
		// Nothing to repair: refresh what the nodes run; the failure
		// stays as it is.
		nodeSummary(s, o.plan)
	case endConverged:
		p := o.plan
		summarize(s, p, gen)
		if errors.Join(p.errs...) == nil {
			// Nothing was left to deploy, on any node: the request needed
			// no rollout. (With a node that could not be observed it
			// stands until that node is.)
			clearDeployRequest(s, p.deployRequest)
			requestDone(s, p, nil, "", "")
		}
		if o.interrupted != "" && s.CurrentRollout != nil && s.CurrentRollout.ID == o.interrupted {
			s.CurrentRollout.State = api.RolloutSucceeded
		}
	case endWaiting:
		o.applyWaiting(s, o.wait.rollout, o.wait.nodes, o.wait.reason, o.wait.msg)
		if o.interrupted != "" && s.CurrentRollout != nil && s.CurrentRollout.ID == o.interrupted {
			s.CurrentRollout.State = api.RolloutSuperseded
		}
	case endRollout:
		o.applyRollout(s)
	}
	switch o.ending {
	case endRepairConverged, endConverged, endWaiting, endRollout:
		o.trackMixed(s)
		if o.plan != nil {
			s.Schedules, o.schedFailed = scheduleStatus(o.schedules, s.Schedules, o.plan)
		}
	}
}

// applyWaiting computes the status of a deployment that waits for nodes
// an infrastructure failure keeps from the revision (status.waiting): the
// revision is the current one (no FailedAttempt), Progressing=True with
// reason (WaitingForNode or NodeDiskFull) and msg naming each node and
// its error, Ready=False, and Degraded only once the wait, counted from
// status.waiting.since, is longer than spec.progressDeadline.
func (o *outcome) applyWaiting(s *api.DeploymentStatus, rollout string, nodes []string, reason, msg string) {
	p, gen := o.plan, o.gen
	s.ObservedGeneration = gen
	s.Commit, s.Revision, s.SpecHash = p.commit, p.revision, p.specHash
	if fa := s.FailedAttempt; fa != nil && (fa.Commit != p.commit || fa.SpecHash != p.specHash) {
		s.FailedAttempt = nil // an older revision's failure: this one replaces it
	}
	nodeSummary(s, p)
	since := *api.NewTime(o.now)
	if s.Waiting != nil {
		since = s.Waiting.Since
	}
	s.Waiting = &api.NodeWait{Since: since, Rollout: rollout, Nodes: nodes, Message: msg}
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: gen})
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: gen})
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionFalse, Reason: reason, ObservedGeneration: gen})
	if waited := o.now.Sub(since.Time); waited > o.deadline {
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: ReasonDeadlineExceeded,
			Message: fmt.Sprintf("still %s after the progress deadline (%s)", msg, o.deadline), ObservedGeneration: gen})
	} else {
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionFalse, Reason: reason,
			Message: fmt.Sprintf("Degraded if the nodes are not back within the progress deadline (%s)", o.deadline), ObservedGeneration: gen})
	}
}

// trackMixed records since when the nodes run different commits or
// revisions (status.mixed) and, once that lasts longer than the progress
// deadline, asks for one MixedVersions warning (o.mixedMsg).
func (o *outcome) trackMixed(s *api.DeploymentStatus) {
	versions := map[string][]string{}
	for _, n := range s.Nodes {
		if n.Commit != "" {
			v := fmt.Sprintf("commit %s (revision %d)", api.ShortCommit(n.Commit), n.Revision)
			versions[v] = append(versions[v], n.Node)
		}
	}
	if len(versions) < 2 {
		s.Mixed = nil
		return
	}
	if s.Mixed == nil {
		s.Mixed = &api.MixedVersions{Since: *api.NewTime(o.now)}
		return
	}
	if s.Mixed.Warned || o.now.Sub(s.Mixed.Since.Time) <= o.deadline {
		return
	}
	s.Mixed.Warned = true
	var parts []string
	for v, nodes := range versions {
		parts = append(parts, strings.Join(nodes, ", ")+" on "+v)
	}
	sort.Strings(parts)
	o.mixedMsg = fmt.Sprintf("the nodes have run different versions for longer than the progress deadline (%s, since %s): %s",
		o.deadline, s.Mixed.Since.Format(time.RFC3339), strings.Join(parts, "; "))
}

// applyRollout computes the status after a rollout.
func (o *outcome) applyRollout(s *api.DeploymentStatus) {
	p, e, gen := o.plan, o.rollout, o.gen
	s.CurrentRollout = &api.RolloutRef{ID: e.ro.ID, State: e.state, LastLogSeq: e.lastLogSeq}
	requestDone(s, p, e.ro, e.state, e.msg)
	switch {
	case p.repairOf != nil:
		// A drift repair while a failed attempt stands: the failure
		// (FailedAttempt, Degraded, Ready) stays until a new commit,
		// spec or action; Progressing says again why nothing rolls out.
		nodeSummary(s, p)
		if e.prevProgressing != nil {
			c := *e.prevProgressing
			c.LastTransitionTime = nil
			api.SetCondition(&s.Conditions, c)
		}
		return
	case e.certErr != nil && e.state == api.RolloutFailed:
		// The revision itself is out; only a certificate is missing
		// or due. No FailedAttempt: the step is retried after
		// CertRetry.
		s.FailedAttempt = nil
		if p.trigger == api.TriggerRestart {
			s.RestartDone = p.restart
		}
		summarize(s, p, gen)
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: e.reason, Message: e.msg, ObservedGeneration: gen})
		if !e.certErr.renew {
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: e.reason,
				Message: "served over HTTP only: " + e.msg, ObservedGeneration: gen})
		}
		return
	}
	switch e.state {
	case api.RolloutSucceeded:
		s.FailedAttempt = nil
		if p.trigger == api.TriggerRestart {
			s.RestartDone = p.restart
		}
		summarize(s, p, gen)
	case api.RolloutRunning:
		// It waits for nodes (infrastructure failures): no verdict on
		// the revision.
		o.applyWaiting(s, e.ro.ID, e.waitNodes, e.reason, e.msg)
	case api.RolloutFailed:
		s.FailedAttempt = &api.FailedAttempt{Commit: p.commit, SpecHash: p.specHash, Reason: e.msg}
		s.ObservedGeneration = gen
		s.Waiting = nil
		nodeSummary(s, p)
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: e.reason, Message: e.msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: e.reason, Message: e.msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: e.reason, Message: "the previous revision keeps serving: " + e.msg, ObservedGeneration: gen})
	default:
		s.Waiting = nil
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: e.reason, Message: e.msg, ObservedGeneration: gen})
	}
}

// clearDeployRequest clears the deploy request id once it is carried out
// (a newer one stays).
func clearDeployRequest(s *api.DeploymentStatus, id string) {
	if id != "" && s.DeployRequest != nil && s.DeployRequest.ID == id {
		s.DeployRequest = nil
	}
}

// summarize fills status after a converged observation or a successful
// rollout: every node was observed and runs the revision.
func summarize(s *api.DeploymentStatus, p *rolloutPlan, gen int64) {
	s.ObservedGeneration = gen
	s.Commit = p.commit
	s.Revision = p.revision
	s.SpecHash = p.specHash
	s.Waiting = nil
	nodeSummary(s, p)
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: ReasonConverged, ObservedGeneration: gen})
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionFalse, Reason: ReasonConverged, ObservedGeneration: gen})
	if len(p.missing) > 0 {
		msg := "nodes not found: " + strings.Join(p.missing, ", ")
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: ReasonNodesUnavailable, Message: msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: ReasonNodesUnavailable, Message: msg, ObservedGeneration: gen})
		return
	}
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: ReasonConverged, ObservedGeneration: gen})
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionFalse, Reason: ReasonConverged, ObservedGeneration: gen})
}

// nodeSummary fills status.nodes with what each target node runs. A node
// that could not be observed keeps what it was last seen running, not
// healthy, with "unreachable: <error>"; a node whose step failed says
// which.
func nodeSummary(s *api.DeploymentStatus, p *rolloutPlan) {
	prev := map[string]api.NodeAppStatus{}
	for _, ns := range s.Nodes {
		prev[ns.Node] = ns
	}
	s.Nodes = nil
	for i, t := range p.targets {
		if t.remove {
			continue
		}
		name := t.node.Metadata.Name
		ns := api.NodeAppStatus{Node: name}
		n := p.runs[i]
		switch {
		case n == nil:
			last := prev[name]
			ns.ActiveSlot, ns.Commit, ns.Revision, ns.Port = last.ActiveSlot, last.Commit, last.Revision, last.Port
			ns.Message = "unreachable"
			if err := p.errs[i]; err != nil {
				ns.Message = "unreachable: " + err.Error()
			}
		case n.obs.State != nil && n.obs.State.Active != "":
			a := n.obs.State.Active
			slot := n.obs.State.Slots[a]
			ns.ActiveSlot, ns.Commit, ns.Revision, ns.Port = a, slot.Commit, slot.Revision, slot.Port
			ns.UnitState = n.obs.Units[a]
			ns.Healthy = running(ns.UnitState) || slot.Commit == n.desired.Commit
			if n.desired.WorkerOnly {
				ns.UnitState = ""
				ns.Healthy, _ = procsConverged(n.desired, n.obs.Observed, a)
			}
			ns.Certificates = certStatus(n.spec, n.obs.Certs)
			ns.Processes = procStatus(n.desired, n.obs.Observed, a, slot.Revision)
			ns.OOMKilled = n.obs.OOMKilled[a]
			ns.Persistent = persistentStatus(n.spec, n.obs.Persistent)
			if ns.OOMKilled {
				ns.Message = "OOMKilled: the active slot used more memory than spec.resources.memory"
			}
		}
		if p.actErrs != nil && p.actErrs[i] != nil && n != nil {
			ns.Message = p.actErrs[i].Error()
		}
		s.Nodes = append(s.Nodes, ns)
	}
}

// setStatus re-reads the deployment, applies mutate to its status and
// writes it (nothing is written when the status did not change). A
// conflict is retried a few times.
func (r *Reconciler) setStatus(ctx context.Context, name string, mutate func(*api.DeploymentStatus)) error {
	for attempt := 0; ; attempt++ {
		obj, err := r.Store.Get(ctx, api.KindDeployment, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		d := obj.(*api.Deployment)
		before := d.StatusJSON()
		mutate(&d.Status)
		if api.Equal(before, d.StatusJSON()) {
			// Unchanged (a converged resync): the store would write
			// nothing either, but not even its write transaction is
			// needed.
			return nil
		}
		_, err = r.Store.UpdateStatus(ctx, d)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		return err
	}
}

// procStatus says how many instances of each process run in the active
// slot.
func procStatus(d Desired, obs nodescript.Observed, active string, revision int64) []api.ProcessStatus {
	var out []api.ProcessStatus
	for _, p := range d.Procs {
		ps := api.ProcessStatus{Name: p.Name, Replicas: p.Replicas, Revision: revision}
		for _, st := range obs.Procs[active][p.Name] {
			if running(st) {
				ps.Running++
			}
		}
		out = append(out, ps)
	}
	return out
}

// persistentStatus lists the spec's persistent directories with their
// sizes on a node (those the node did not report are left out).
func persistentStatus(s *api.DeploymentSpec, usage map[string]int64) []api.PersistentStatus {
	var out []api.PersistentStatus
	for _, p := range s.Persistent {
		b, ok := usage[p.Path]
		if !ok {
			continue
		}
		ps := api.PersistentStatus{Path: p.Path, Bytes: b, Size: p.Size}
		if lim, err := api.ParseBytes(p.Size); p.Size != "" && err == nil && b > lim {
			ps.OverSize = true
		}
		out = append(out, ps)
	}
	return out
}
