package deployment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// ActionError is an action the deployment's state does not allow (for
// example a rollback with no earlier revision); the API answers 409.
type ActionError struct{ Msg string }

func (e *ActionError) Error() string { return e.Msg }

// Code is the HTTP status the API answers an ActionError with (the API
// server's CodedError): 409.
func (e *ActionError) Code() int { return http.StatusConflict }

// RecordAction validates an action and records it in the deployment's
// status, where the next reconcile finds it (the caller wakes the loop,
// superseding a rollout in flight: see Supersedes).
func (r *Reconciler) RecordAction(ctx context.Context, name string, req api.ActionRequest) error {
	obj, err := r.Store.Get(ctx, api.KindDeployment, name)
	if err != nil {
		return err
	}
	d := obj.(*api.Deployment)
	gen := d.Metadata.Generation
	id := req.ID
	if id == "" {
		id = newRequestID()
	}
	var mutate func(s *api.DeploymentStatus)
	switch req.Action {
	case api.ActionDeploy, api.ActionResume:
		if req.Action == api.ActionResume && !pinHolds(d) {
			return &ActionError{fmt.Sprintf("deployment %s is not pinned: it follows %s", name, followed(&d.Spec))}
		}
		mutate = func(s *api.DeploymentStatus) {
			s.Pin = nil
			s.FailedAttempt = nil
			s.DeployRequest = &api.DeployRequest{ID: id, By: req.By, Generation: gen, RerunRelease: req.RerunRelease}
			api.RemoveCondition(&s.Conditions, api.ConditionPinned)
		}
	case api.ActionRedeploy:
		if !api.IsCommitID(req.Commit) {
			return fmt.Errorf("%w: commit must be a full 40-character lower-case hex id", store.ErrInvalid)
		}
		mutate = func(s *api.DeploymentStatus) {
			s.Pin = &api.CommitPin{ID: id, Commit: req.Commit, Reason: api.TriggerRedeploy, Generation: gen, By: req.By}
			s.FailedAttempt = nil
			setPinnedCondition(s, name, &d.Spec, gen)
		}
	case api.ActionRestart:
		if d.Status.Commit == "" {
			return &ActionError{"nothing to restart: the deployment has not been rolled out yet"}
		}
		mutate = func(s *api.DeploymentStatus) { s.Restart, s.RestartBy = id, req.By; s.FailedAttempt = nil }
	case api.ActionRollback:
		target, err := r.rollbackTarget(ctx, d, req.ToRevision)
		if err != nil {
			return err
		}
		if target.Spec != nil {
			return r.restoreRevision(ctx, d, target, id, req.By)
		}
		// Recorded before rollouts kept their spec: only the commit
		// goes back (the pin says so: SpecRestored false).
		mutate = func(s *api.DeploymentStatus) {
			s.Pin = &api.CommitPin{ID: id, Commit: target.Commit, Reason: api.TriggerRollback, Generation: gen, Revision: target.Revision, By: req.By}
			s.FailedAttempt = nil
			setPinnedCondition(s, name, &d.Spec, gen)
		}
	case api.ActionMaintenance:
		if req.Maintenance == nil {
			return fmt.Errorf("%w: action maintenance needs its maintenance mode", store.ErrInvalid)
		}
		return r.setMaintenance(ctx, d, *req.Maintenance)
	default:
		return fmt.Errorf("%w: unknown action %q (deploy, redeploy, restart, rollback, resume, maintenance)", store.ErrInvalid, req.Action)
	}
	return r.setStatus(ctx, name, mutate)
}

// restoreRevision is a rollback to a revision whose spec was recorded
// (target.Spec, from its succeeded rollout): in one transaction it writes
// the parts of that spec that make the revision (restoredSpec) as a new
// spec generation, as kubectl rollout undo writes the old pod template,
// and pins the revision's commit at that generation. A recorded spec
// equal to the current one writes no generation. The spec is checked as
// an applied one would be: an ingress host another deployment took since
// fails the store's rules (409).
func (r *Reconciler) restoreRevision(ctx context.Context, d *api.Deployment, target *api.Rollout, id, by string) error {
	name := d.Metadata.Name
	return r.Store.Txn(ctx, func(tx store.Tx) error {
		obj, err := tx.Get(ctx, api.KindDeployment, name)
		if err != nil {
			return err
		}
		cur := obj.(*api.Deployment)
		if cur.Metadata.Generation != d.Metadata.Generation {
			// A spec was applied since the target was chosen.
			return fmt.Errorf("deployment %s: %w", name, store.ErrConflict)
		}
		next := cur.DeepCopyObject().(*api.Deployment)
		next.Spec = restoredSpec(cur.Spec, *target.Spec)
		next.Default()
		if errs := next.Validate(); len(errs) > 0 {
			return &ActionError{fmt.Sprintf("the recorded spec of revision %d is not valid today: %s", target.Revision, errs.Error())}
		}
		now := cur.DeepCopyObject().(*api.Deployment)
		now.Default()
		if !api.Equal(now.SpecJSON(), next.SpecJSON()) {
			// Otherwise the spec is the revision's already: no new generation.
			if obj, err = tx.Update(ctx, next); err != nil {
				return err
			}
		}
		stored := obj.(*api.Deployment)
		gen := stored.Metadata.Generation
		s := &stored.Status
		s.Pin = &api.CommitPin{ID: id, Commit: target.Commit, Reason: api.TriggerRollback, Generation: gen, Revision: target.Revision, By: by, SpecRestored: true}
		s.FailedAttempt = nil
		setPinnedCondition(s, name, &stored.Spec, gen)
		_, err = tx.UpdateStatus(ctx, stored)
		return err
	})
}

// setMaintenance writes spec.ingress.maintenance (nil when m is not
// enabled) as a new spec generation, in one transaction with the pin of a
// rollback or redeploy that held at the old generation, carried to the new
// one: maintenance changes only the nginx site, and must not roll a
// rolled-back deployment forward. An unchanged mode writes nothing.
func (r *Reconciler) setMaintenance(ctx context.Context, d *api.Deployment, m api.Maintenance) error {
	name := d.Metadata.Name
	return r.Store.Txn(ctx, func(tx store.Tx) error {
		obj, err := tx.Get(ctx, api.KindDeployment, name)
		if err != nil {
			return err
		}
		cur := obj.(*api.Deployment)
		next := cur.DeepCopyObject().(*api.Deployment)
		ing := api.Ingress{}
		if next.Spec.Ingress != nil {
			ing = *next.Spec.Ingress
		}
		ing.Maintenance = nil
		if m.Enabled {
			ing.Maintenance = &m
		}
		next.Spec.Ingress = &ing
		if errs := next.Validate(); len(errs) > 0 {
			return &ActionError{fmt.Sprintf("maintenance mode of %s: %s", name, errs.Error())}
		}
		if api.Equal(cur.SpecJSON(), next.SpecJSON()) {
			return nil
		}
		held := pinHolds(cur)
		if obj, err = tx.Update(ctx, next); err != nil {
			return err
		}
		if !held {
			return nil
		}
		stored := obj.(*api.Deployment)
		pin := *cur.Status.Pin
		pin.Generation = stored.Metadata.Generation
		stored.Status.Pin = &pin
		setPinnedCondition(&stored.Status, name, &stored.Spec, stored.Metadata.Generation)
		_, err = tx.UpdateStatus(ctx, stored)
		return err
	})
}

// restoredSpec is the spec a rollback writes: cur, with what makes a
// revision taken from the revision's recorded spec rec — the source, the
// build, the runtime and docker settings, run (command, port, env names
// and values, secret references), the health check, the processes and the
// ingress. What
// places and paces the deployment stays as it is now, as kubectl rollout
// undo keeps replicas and strategy: nodes, nodeSelector, strategy,
// keepReleases, progressDeadline and suspend.
func restoredSpec(cur, rec api.DeploymentSpec) api.DeploymentSpec {
	out := cur
	out.Source = rec.Source
	out.Build = rec.Build
	out.Runtime = rec.Runtime
	out.Docker = rec.Docker
	out.Run = rec.Run
	out.HealthCheck = rec.HealthCheck
	out.Processes = rec.Processes
	out.Ingress = rec.Ingress
	if rec.Ingress != nil || cur.Ingress != nil {
		// Maintenance mode stays as it is now (it is no part of a revision).
		ing := api.Ingress{}
		if rec.Ingress != nil {
			ing = *rec.Ingress
		}
		ing.Maintenance = nil
		if cur.Ingress != nil {
			ing.Maintenance = cur.Ingress.Maintenance
		}
		out.Ingress = &ing
		if rec.Ingress == nil && ing.Maintenance == nil {
			out.Ingress = nil
		}
	}
	return out
}

// pinHolds reports whether an action's pin applies to d's spec generation.
func pinHolds(d *api.Deployment) bool {
	p := d.Status.Pin
	return p != nil && p.Generation == d.Metadata.Generation
}

// followed names what the spec follows: its ref, or its pinned commit.
func followed(spec *api.DeploymentSpec) string {
	if spec.Source.Commit != "" {
		return "commit " + api.ShortCommit(spec.Source.Commit)
	}
	ref := spec.Source.Ref
	if ref == "" {
		ref = api.DefaultRef
	}
	return ref
}

// newRequestID returns a random id for a restart or deploy request.
func newRequestID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// triggeredBy says who a rollout with trigger (computed from d's status
// and spec generation gen, pin being the pin in effect) was asked for by:
// the requester of the action it carries out, the applier of a new spec
// generation, or "controller" (a new commit found on the branch, drift
// repair, a webhook). A new revision while a deploy request stands is a
// deploy-now rollout: the trigger returned says so.
func triggeredBy(d *api.Deployment, gen int64, trigger string, pin *api.CommitPin) (string, string) {
	s := &d.Status
	or := func(by string) string {
		if by == "" {
			return controllerName
		}
		return by
	}
	switch {
	case trigger == api.TriggerRestart:
		return trigger, or(s.RestartBy)
	case pin != nil && trigger == pin.Reason:
		return trigger, or(pin.By)
	case trigger != api.TriggerApply:
	case s.DeployRequest != nil && s.DeployRequest.Generation == gen:
		return api.TriggerDeployNow, or(s.DeployRequest.By)
	case s.AppliedBy != nil && s.AppliedBy.Generation == gen && s.ObservedGeneration != gen:
		// The first rollout of the spec generation someone applied.
		return trigger, or(s.AppliedBy.By)
	}
	return trigger, controllerName
}

// controllerName is TriggeredBy of rollouts nobody asked for.
const controllerName = "controller"

// rollbackTarget finds the rollout a rollback restores, read whole (with
// its recorded spec, which listings leave out): the newest succeeded
// rollout of revision to, or, for to 0:
//
//   - while a failed attempt stands (a new commit or spec failed and the
//     last good revision, status.revision, still serves): that last good
//     revision — undoing the change that failed;
//   - otherwise the newest succeeded revision before the current one that
//     differs from it (its commit, or its recorded spec), so that undoing
//     a rollback goes further back rather than to its own copy.
func (r *Reconciler) rollbackTarget(ctx context.Context, d *api.Deployment, to int64) (*api.Rollout, error) {
	ros, err := r.Store.ListRollouts(ctx, d.Metadata.Name, 0)
	if err != nil {
		return nil, err
	}
	cur := d.Status.Revision
	if to != 0 {
		for _, ro := range ros {
			if ro.State == api.RolloutSucceeded && ro.Revision == to {
				return r.Store.GetRollout(ctx, ro.ID)
			}
		}
		return nil, &ActionError{fmt.Sprintf("no succeeded rollout of revision %d to roll back to (see rollout history)", to)}
	}
	var current *api.Rollout // the newest succeeded rollout of the current revision
	for _, ro := range ros {
		if ro.State == api.RolloutSucceeded && ro.Revision == cur {
			if current, err = r.Store.GetRollout(ctx, ro.ID); err != nil {
				return nil, err
			}
			break
		}
	}
	if d.Status.FailedAttempt != nil && current != nil {
		return current, nil
	}
	for _, ro := range ros {
		if ro.State != api.RolloutSucceeded || ro.Revision >= cur || ro.Commit == d.Status.Commit && (current == nil || current.Spec == nil) {
			continue
		}
		full, err := r.Store.GetRollout(ctx, ro.ID)
		if err != nil {
			return nil, err
		}
		if current != nil && full.Commit == current.Commit && sameRevisionSpec(full.Spec, current.Spec) {
			continue // a copy of the current revision (the one it was rolled back to)
		}
		return full, nil
	}
	return nil, &ActionError{fmt.Sprintf("no earlier revision than %d to roll back to", cur)}
}

// sameRevisionSpec reports whether two recorded specs make the same
// revision (the parts a rollback restores are equal); a missing spec is
// taken as the same.
func sameRevisionSpec(a, b *api.DeploymentSpec) bool {
	if a == nil || b == nil {
		return true
	}
	var zero api.DeploymentSpec
	ra, rb := restoredSpec(zero, *a), restoredSpec(zero, *b)
	return api.Equal(mustJSON(ra), mustJSON(rb))
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
