package reconciler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// ErrNoDeploymentLoop means the store keeps no rollouts, so deployment
// actions cannot run.
var ErrNoDeploymentLoop error = unavailableError("this server does not roll deployments out (its store keeps no rollouts)")

// ActionError is an action the deployment's state does not allow (for
// example a rollback with no earlier revision); the API answers 409.
type ActionError struct{ Msg string }

func (e *ActionError) Error() string { return e.Msg }

var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// DeploymentAction records an action in the deployment's status and wakes
// the loop, superseding a rollout in flight. It returns the deployment
// with the recorded request; the rollout itself runs in the background.
func (m *Manager) DeploymentAction(ctx context.Context, name string, req ActionRequest) (*api.Deployment, error) {
	if m.deps == nil {
		return nil, ErrNoDeploymentLoop
	}
	obj, err := m.cfg.Store.Get(ctx, api.KindDeployment, name)
	if err != nil {
		return nil, err
	}
	d := obj.(*api.Deployment)
	gen := d.Metadata.Generation
	var mutate func(s *api.DeploymentStatus)
	switch req.Action {
	case ActionDeploy:
		id := newRequestID()
		mutate = func(s *api.DeploymentStatus) {
			s.Pin = nil
			s.FailedAttempt = nil
			s.DeployRequest = &api.DeployRequest{ID: id, By: req.By, Generation: gen}
		}
	case ActionRedeploy:
		if !commitRE.MatchString(req.Commit) {
			return nil, fmt.Errorf("%w: commit must be a full 40-character lower-case hex id", store.ErrInvalid)
		}
		mutate = func(s *api.DeploymentStatus) {
			s.Pin = &api.CommitPin{Commit: req.Commit, Reason: api.TriggerRedeploy, Generation: gen, By: req.By}
			s.FailedAttempt = nil
		}
	case ActionRestart:
		if d.Status.Commit == "" {
			return nil, &ActionError{"nothing to restart: the deployment has not been rolled out yet"}
		}
		id := newRequestID()
		mutate = func(s *api.DeploymentStatus) { s.Restart, s.RestartBy = id, req.By; s.FailedAttempt = nil }
	case ActionRollback:
		target, err := m.rollbackTarget(ctx, d, req.ToRevision)
		if err != nil {
			return nil, err
		}
		mutate = func(s *api.DeploymentStatus) {
			s.Pin = &api.CommitPin{Commit: target.Commit, Reason: api.TriggerRollback, Generation: gen, Revision: target.Revision, By: req.By}
			s.FailedAttempt = nil
		}
	default:
		return nil, fmt.Errorf("%w: unknown action %q (deploy, redeploy, restart, rollback)", store.ErrInvalid, req.Action)
	}
	if err := m.deps.setStatus(ctx, name, mutate); err != nil {
		return nil, err
	}
	obj, err = m.cfg.Store.Get(ctx, api.KindDeployment, name)
	if err != nil {
		m.depl.Supersede(name, nil)
		return nil, err
	}
	m.depl.Supersede(name, obj)
	return obj.(*api.Deployment), nil
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
func (m *Manager) rollbackTarget(ctx context.Context, d *api.Deployment, to int64) (*api.Rollout, error) {
	ros, err := m.deps.Store.ListRollouts(ctx, d.Metadata.Name, 0)
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
