package deployment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// closeInterrupted ends the deployment's current rollout if its record is
// still running: only a reconcile of this key could run it, and this one
// holds the key, so its control plane stopped. It returns the rollout's
// id ("" when there was none).
func (r *Reconciler) closeInterrupted(ctx context.Context, d *api.Deployment, state, msg string) string {
	cur := d.Status.CurrentRollout
	if cur == nil || cur.State != api.RolloutRunning {
		return ""
	}
	old, err := r.Store.GetRollout(ctx, cur.ID)
	if err != nil || old.Done() {
		return ""
	}
	old.State, old.Message, old.FinishedAt = state, msg, api.Now()
	if err := r.Store.UpdateRollout(ctx, old); err != nil {
		r.log().Warn("marking an interrupted rollout", "rollout", old.ID, "err", err)
		return ""
	}
	r.log().Info("interrupted rollout closed", "rollout", old.ID, "ranOn", old.Server, "state", state)
	return old.ID
}

// orphanScan is how many of a deployment's newest rollouts closeOrphans
// looks at.
const orphanScan = 3

// closeOrphans cancels every rollout of the deployment still marked
// running, other than keep, that the status does not name: a rollout whose
// record was created but whose start never reached the status (the store
// failed in between, e.g. a restarting database). Only a reconcile of
// this key could run it, and this one holds the key, so it is not running.
func (r *Reconciler) closeOrphans(ctx context.Context, d *api.Deployment, keep string) {
	ros, err := r.Store.ListRollouts(ctx, d.Metadata.Name, orphanScan)
	if err != nil {
		r.log().Warn("looking for interrupted rollouts", "deployment", d.Metadata.Name, "err", err)
		return
	}
	for _, ro := range ros {
		if ro.ID == keep || ro.Done() || d.Status.CurrentRollout != nil && d.Status.CurrentRollout.ID == ro.ID {
			continue
		}
		ro.State, ro.Message, ro.FinishedAt = api.RolloutCancelled, "interrupted before its start was recorded (the store failed); the deployment's next rollout continues", api.Now()
		if err := r.Store.UpdateRollout(ctx, ro); err != nil {
			r.log().Warn("marking an interrupted rollout", "rollout", ro.ID, "err", err)
			continue
		}
		r.log().Info("interrupted rollout closed", "rollout", ro.ID, "ranOn", ro.Server, "state", ro.State)
	}
}

// unitUnhealthyEvents raises UnitUnhealthy once per node whose plan
// repairs drift by starting an active unit found not running.
func (r *Reconciler) unitUnhealthyEvents(ctx context.Context, name, rolloutID string, p rolloutPlan, pending []int) {
	for _, i := range pending {
		for _, a := range p.plans[i] {
			if a.Type == ActStart && strings.HasPrefix(a.Reason, "active unit is ") {
				r.Events.Record(ctx, &api.Event{Type: api.EventUnitUnhealthy, Severity: api.SeverityWarning, Object: api.KindDeployment + "/" + name,
					Rollout: rolloutID, Message: fmt.Sprintf("node %s: %s (%s slot); restarting it", p.targets[i].node.Metadata.Name, a.Reason, a.Slot)})
				break
			}
		}
	}
}

// rolloutFinishedEvent raises RolloutSucceeded or RolloutFailed (nothing
// for a superseded rollout).
func (r *Reconciler) rolloutFinishedEvent(ctx context.Context, name string, ro *api.Rollout, state, msg string) {
	e := &api.Event{Object: api.KindDeployment + "/" + name, Rollout: ro.ID}
	switch state {
	case api.RolloutSucceeded:
		e.Type, e.Severity = api.EventRolloutSucceeded, api.SeverityInfo
		e.Message = fmt.Sprintf("revision %d (commit %s, %s) rolled out", ro.Revision, api.ShortCommit(ro.Commit), ro.Trigger)
	case api.RolloutFailed:
		e.Type, e.Severity, e.Message = api.EventRolloutFailed, api.SeverityError, msg
	default:
		return
	}
	r.Events.Record(ctx, e)
}

// recordLastDeployment writes, on every node the rollout succeeded on,
// which deployment last succeeded there.
func (r *Reconciler) recordLastDeployment(ctx context.Context, name, commit string, revision int64, nodes []string) {
	for _, node := range nodes {
		for attempt := 0; attempt < 5; attempt++ {
			o, err := r.Store.Get(ctx, api.KindNode, node)
			if err != nil {
				break
			}
			n := o.(*api.Node)
			n.Status.LastDeployment = &api.LastDeployment{Deployment: name, Commit: commit, Revision: revision, Time: api.Now()}
			if _, err := r.Store.UpdateStatus(ctx, n); !errors.Is(err, store.ErrConflict) {
				break
			}
		}
	}
}

// DefaultKeepRollouts is how many rollouts per deployment are kept when
// Reconciler.KeepRollouts is zero.
const DefaultKeepRollouts = 20

// keepRollouts returns how many rollouts per deployment to keep; 0 means
// all.
func (r *Reconciler) keepRollouts() int {
	switch {
	case r.KeepRollouts == 0:
		return DefaultKeepRollouts
	case r.KeepRollouts < 0:
		return 0
	}
	return r.KeepRollouts
}

// pruneRollouts deletes a deployment's oldest rollouts (in ListRollouts
// order), with their logs. It keeps:
//
//   - the current rollout (even when it sorts below others: a rollback to
//     an older revision);
//   - the undo targets: the newest succeeded rollout of each of the keep
//     newest revisions that succeeded, whatever came after them — the
//     record (and its spec) that `rollout undo --to-revision` restores, so
//     that every revision `rollout history` lists as succeeded can still
//     be rolled back to;
//   - the keep-1 newest of the others.
//
// So at most 2*keep rollouts stay. Failures are logged, not returned:
// retention never fails a rollout, and the next rollout tries again.
func (r *Reconciler) pruneRollouts(ctx context.Context, deployment, current string) {
	keep := r.keepRollouts()
	if keep <= 0 {
		return
	}
	// Runs after a rollout that may have been cancelled: it still prunes.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	list, err := r.Store.ListRollouts(ctx, deployment, 0)
	if err != nil {
		r.log().Warn("listing rollouts to prune", "deployment", deployment, "err", err)
		return
	}
	for _, ro := range pruneList(list, current, keep) {
		if err := r.Store.DeleteRollout(ctx, ro.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.log().Warn("deleting an old rollout", "deployment", deployment, "rollout", ro.ID, "err", err)
			continue
		}
		r.log().Debug("deleted an old rollout", "deployment", deployment, "rollout", ro.ID, "keep", keep)
	}
}

// pruneList returns the rollouts of list (newest first) that retention
// deletes: see pruneRollouts.
func pruneList(list []*api.Rollout, current string, keep int) []*api.Rollout {
	targets := map[int64]bool{} // revisions whose newest succeeded rollout is kept
	for _, ro := range list {
		if ro.ID == current && ro.State == api.RolloutSucceeded {
			targets[ro.Revision] = true
		}
	}
	var out []*api.Rollout
	kept := 1 // the current one
	for _, ro := range list {
		if ro.ID == current {
			continue
		}
		if ro.State == api.RolloutSucceeded && !targets[ro.Revision] && len(targets) < keep {
			targets[ro.Revision] = true
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		out = append(out, ro)
	}
	return out
}

// record is the step after the status is written: a MixedVersions
// warning when the nodes have run different versions for longer than the
// progress deadline, a finished rollout's events (a certificate failure
// that repeats is not raised again), then retention of old rollouts
// (deleting old logs never delays the status).
func (r *Reconciler) record(ctx context.Context, d *api.Deployment, o *outcome) {
	name := d.Metadata.Name
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if o.mixedMsg != "" {
		r.Events.Record(sctx, &api.Event{Type: api.EventMixedVersions, Severity: api.SeverityWarning, Object: api.KindDeployment + "/" + name, Message: o.mixedMsg})
	}
	r.scheduleFailedEvents(sctx, name, o.schedFailed)
	e := o.rollout
	if e == nil {
		return
	}
	if !repeatedCertFailure(d.Status.Conditions, e.certErr, e.reason) {
		r.rolloutFinishedEvent(sctx, name, e.ro, e.state, e.msg)
		if e.certErr != nil && e.certErr.renew && e.state == api.RolloutFailed {
			r.certificateRenewalFailedEvent(sctx, name, e.failedNode, e.ro.ID, e.certErr)
		}
	}
	r.pruneRollouts(ctx, name, e.ro.ID)
}
