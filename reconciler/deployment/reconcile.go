package deployment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler"
)

// Reconcile implements reconciler.Reconciler. It runs the reconcile's
// steps in order, each in the file named for it:
//
//	load → deletion (delete.go) → suspended / invalid spec → source and
//	secrets (source.go) → observe → plan → act (rollout.go, act.go)
//
// Each step records what it found in an outcome; one deferred
// finalisation (status.go) computes the status from that outcome and
// writes it once, and the record step (record.go: events, retention of
// old rollouts) runs after it. A rollout also writes its progress while
// it runs (its start, and how far its log got after each step), so that
// clients can follow it.
func (r *Reconciler) Reconcile(ctx context.Context, req reconciler.Request) (_ reconciler.Result, err error) {
	d, err := r.load(ctx, req.Name)
	if d == nil || err != nil {
		return reconciler.Result{}, err
	}
	o := &outcome{gen: d.Metadata.Generation, now: time.Now(), schedules: d.Spec.Schedules}
	if d.Spec.ProgressDeadline != nil {
		o.deadline = d.Spec.ProgressDeadline.Duration
	}
	defer func() { err = r.finish(ctx, d, o, err) }()
	if d.Metadata.Annotations[api.AnnotationDeletionRequested] != "" {
		return r.remove(ctx, d, o)
	}
	if d.Spec.Suspend {
		o.ending = endSuspended
		return reconciler.Result{}, nil
	}
	if errs := d.Validate(); len(errs) > 0 {
		o.ending, o.msg = endInvalid, errs.Error()
		return reconciler.Result{}, reconciler.Terminal(fmt.Errorf("invalid spec: %s", o.msg))
	}
	rv, err := r.resolveSource(ctx, d, o)
	if err != nil {
		return reconciler.Result{}, err
	}
	targets, missing, err := r.selectNodes(ctx, d)
	if err != nil {
		return reconciler.Result{}, err
	}
	rv.decide(d)
	if rv.wait {
		return reconciler.Result{RequeueAfter: r.resync()}, nil
	}
	p := r.observe(ctx, d, rv, targets, missing)
	if len(p.pending()) == 0 {
		return r.converged(ctx, d, p, o)
	}
	return r.rollout(ctx, d, p, o)
}

// finish is the reconcile's last step, deferred: it writes the status the
// outcome says (finalizeStatus), joining a failure to write it with err,
// and then runs the record step.
func (r *Reconciler) finish(ctx context.Context, d *api.Deployment, o *outcome, err error) error {
	if serr := r.finalizeStatus(ctx, d.Metadata.Name, o); serr != nil {
		err = errors.Join(err, serr)
	}
	r.record(ctx, d, o)
	return err
}

// converged ends a reconcile that found nothing to do on any reachable
// node: the status says what the nodes run. A rollout still marked
// running was interrupted after its last step (its control plane
// stopped), or waited for nodes that were found converged: the nodes say
// it is done. While a failed attempt stands (p.repairOf), only the nodes'
// summary is refreshed; the failure stays as it is. Nodes that could not
// be observed are waited for (endWaiting): the reconcile is not
// converged, and is retried with backoff.
func (r *Reconciler) converged(ctx context.Context, d *api.Deployment, p *rolloutPlan, o *outcome) (reconciler.Result, error) {
	o.plan = p
	nodes, errs := p.waiting()
	switch {
	case p.repairOf != nil:
		o.ending = endRepairConverged
	case len(nodes) > 0:
		o.ending = endWaiting
		o.wait.nodes = nodes
		o.wait.reason, o.wait.msg = waitReason(nodes, errs)
		if ro := r.waitingRollout(ctx, d, p); ro != nil {
			o.wait.rollout = ro.ID // it goes on once the nodes are back
		} else if w := d.Status.Waiting; w != nil && w.Rollout != "" {
			// It waited to roll out what is no longer wanted.
			if r.closeInterrupted(ctx, d, api.RolloutSuperseded, "superseded while it waited for "+strings.Join(w.Nodes, ", ")) != "" {
				o.interrupted = w.Rollout
			}
		}
	default:
		o.ending = endConverged
		msg := "its control plane stopped before recording the end; the nodes were found converged"
		if w := d.Status.Waiting; w != nil && w.Rollout != "" {
			msg = "the nodes it waited for (" + strings.Join(w.Nodes, ", ") + ") were found converged"
		}
		o.interrupted = r.closeInterrupted(ctx, d, api.RolloutSucceeded, msg)
		if p.revision != d.Status.Revision || d.Status.ObservedGeneration != d.Metadata.Generation {
			// The nodes run what the status does not record yet: a
			// rollout may have run whose start never reached the status.
			// (A converged resync of a recorded revision reads nothing.)
			r.closeOrphans(ctx, d, "")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return reconciler.Result{}, err
	}
	return reconciler.Result{RequeueAfter: r.resync()}, nil
}
