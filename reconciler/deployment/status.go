package deployment

import (
	"context"
	"errors"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
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
		nodeSummary(s, o.plan.targets, o.plan.runs)
	case endConverged:
		p := o.plan
		summarize(s, p.targets, p.runs, gen, p.commit, p.revision, p.specHash, p.missing, errors.Join(p.errs...))
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
	case endRollout:
		o.applyRollout(s)
	}
}

// applyRollout computes the status after a rollout.
func (o *outcome) applyRollout(s *api.DeploymentStatus) {
	p, e, gen := o.plan, o.rollout, o.gen
	obsErr := errors.Join(p.errs...)
	s.CurrentRollout = &api.RolloutRef{ID: e.ro.ID, State: e.state, LastLogSeq: e.lastLogSeq}
	requestDone(s, p, e.ro, e.state, e.msg)
	switch {
	case p.repairOf != nil:
		// A drift repair while a failed attempt stands: the failure
		// (FailedAttempt, Degraded, Ready) stays until a new commit,
		// spec or action; Progressing says again why nothing rolls out.
		nodeSummary(s, p.targets, p.runs)
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
		summarize(s, p.targets, p.runs, gen, p.commit, p.revision, p.specHash, p.missing, obsErr)
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
		summarize(s, p.targets, p.runs, gen, p.commit, p.revision, p.specHash, p.missing, obsErr)
	case api.RolloutFailed:
		s.FailedAttempt = &api.FailedAttempt{Commit: p.commit, SpecHash: p.specHash, Reason: e.msg}
		s.ObservedGeneration = gen
		nodeSummary(s, p.targets, p.runs)
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: e.reason, Message: e.msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: e.reason, Message: e.msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: e.reason, Message: "the previous revision keeps serving: " + e.msg, ObservedGeneration: gen})
	default:
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

// summarize fills status after a converged observation or a successful rollout.
func summarize(s *api.DeploymentStatus, targets []target, runs []*nodeRun, gen int64, commit string, revision int64, sh string, missing []string, obsErr error) {
	s.ObservedGeneration = gen
	s.Commit = commit
	s.Revision = revision
	s.SpecHash = sh
	nodeSummary(s, targets, runs)
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: ReasonConverged, ObservedGeneration: gen})
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionFalse, Reason: ReasonConverged, ObservedGeneration: gen})
	switch {
	case obsErr != nil || len(missing) > 0:
		msg := ""
		if len(missing) > 0 {
			msg = "nodes not found: " + strings.Join(missing, ", ")
		}
		if obsErr != nil {
			msg = strings.TrimPrefix(msg+"; "+obsErr.Error(), "; ")
		}
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: ReasonNodesUnavailable, Message: msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: ReasonNodesUnavailable, Message: msg, ObservedGeneration: gen})
	default:
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: ReasonConverged, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionFalse, Reason: ReasonConverged, ObservedGeneration: gen})
	}
}

// nodeSummary fills status.nodes with what each target node runs.
func nodeSummary(s *api.DeploymentStatus, targets []target, runs []*nodeRun) {
	s.Nodes = nil
	for i, t := range targets {
		if t.remove {
			continue
		}
		ns := api.NodeAppStatus{Node: t.node.Metadata.Name}
		if n := runs[i]; n != nil && n.obs.State != nil && n.obs.State.Active != "" {
			a := n.obs.State.Active
			slot := n.obs.State.Slots[a]
			ns.ActiveSlot, ns.Commit, ns.Port = a, slot.Commit, slot.Port
			ns.UnitState = n.obs.Units[a]
			ns.Healthy = running(ns.UnitState) || slot.Commit == n.desired.Commit
			ns.Certificates = certStatus(n.spec, n.obs.Certs)
		} else if runs[i] == nil {
			ns.Message = "unreachable"
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
		mutate(&d.Status)
		_, err = r.Store.UpdateStatus(ctx, d)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		return err
	}
}
