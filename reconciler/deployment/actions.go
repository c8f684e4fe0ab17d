package deployment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	case api.ActionDeploy:
		mutate = func(s *api.DeploymentStatus) {
			s.Pin = nil
			s.FailedAttempt = nil
			s.DeployRequest = &api.DeployRequest{ID: id, By: req.By, Generation: gen}
		}
	case api.ActionRedeploy:
		if !api.IsCommitID(req.Commit) {
			return fmt.Errorf("%w: commit must be a full 40-character lower-case hex id", store.ErrInvalid)
		}
		mutate = func(s *api.DeploymentStatus) {
			s.Pin = &api.CommitPin{ID: id, Commit: req.Commit, Reason: api.TriggerRedeploy, Generation: gen, By: req.By}
			s.FailedAttempt = nil
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
		mutate = func(s *api.DeploymentStatus) {
			s.Pin = &api.CommitPin{ID: id, Commit: target.Commit, Reason: api.TriggerRollback, Generation: gen, Revision: target.Revision, By: req.By}
			s.FailedAttempt = nil
		}
	default:
		return fmt.Errorf("%w: unknown action %q (deploy, redeploy, restart, rollback)", store.ErrInvalid, req.Action)
	}
	return r.setStatus(ctx, name, mutate)
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

// rollbackTarget finds the succeeded rollout of revision to (0: the
// newest succeeded revision before the current one).
func (r *Reconciler) rollbackTarget(ctx context.Context, d *api.Deployment, to int64) (*api.Rollout, error) {
	ros, err := r.Store.ListRollouts(ctx, d.Metadata.Name, 0)
	if err != nil {
		return nil, err
	}
	cur := d.Status.Revision
	for _, ro := range ros {
		if ro.State != api.RolloutSucceeded || ro.Commit == d.Status.Commit && to == 0 {
			continue
		}
		if to == 0 && ro.Revision < cur || to != 0 && ro.Revision == to {
			return ro, nil
		}
	}
	if to != 0 {
		return nil, &ActionError{fmt.Sprintf("no succeeded rollout of revision %d to roll back to", to)}
	}
	return nil, &ActionError{fmt.Sprintf("no earlier revision than %d to roll back to", cur)}
}
