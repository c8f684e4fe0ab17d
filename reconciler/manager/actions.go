package manager

import (
	"context"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/deployment"
)

// ErrNoDeploymentLoop means the store keeps no rollouts, so deployment
// actions cannot run.
var ErrNoDeploymentLoop error = unavailableError("this server does not roll deployments out (its store keeps no rollouts)")

// DeploymentAction records an action in the deployment's status and wakes
// the loop, superseding a rollout in flight. It returns the deployment
// with the recorded request; the rollout itself runs in the background.
func (m *Manager) DeploymentAction(ctx context.Context, name string, req api.ActionRequest) (*api.Deployment, error) {
	if m.deps == nil {
		return nil, ErrNoDeploymentLoop
	}
	if err := m.deps.RecordAction(ctx, name, req); err != nil {
		return nil, err
	}
	obj, err := m.cfg.Store.Get(ctx, api.KindDeployment, name)
	if err != nil {
		m.depl.Supersede(name, nil)
		return nil, err
	}
	m.depl.Supersede(name, obj)
	return obj.(*api.Deployment), nil
}

// RuntimeLogs streams the journal of each node's active slot of a
// deployment to fn (see deployment.RuntimeLogs).
func (m *Manager) RuntimeLogs(ctx context.Context, name string, req api.RuntimeLogRequest, fn func(api.RuntimeLogLine)) error {
	return deployment.RuntimeLogs(ctx, m.cfg.Store, m.connector(), m.cfg.Keyring, name, req, fn)
}

// usesSecret reports whether a deployment spec references the Secret name.
func usesSecret(s *api.DeploymentSpec, name string) bool {
	for _, n := range s.SecretNames() {
		if n == name {
			return true
		}
	}
	return false
}

// watchSecrets enqueues the deployments that use a Secret whenever it is
// written or deleted, so that a changed secret rolls them out at once
// rather than at the next resync. A failed watch is retried; a missed
// change is still found by the resync (the secret hash is part of the
// revision).
func (m *Manager) watchSecrets(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		events, err := m.cfg.Store.Watch(ctx, store.WatchOptions{Kind: api.KindSecret})
		if err != nil {
			m.cfg.Logger.Warn("watching secrets failed; retrying", "err", err, "in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(delay*2, 10*time.Second)
			continue
		}
		delay = 100 * time.Millisecond
		for ev := range events {
			name := ev.Object.GetObjectMeta().Name
			deps, err := m.cfg.Store.List(ctx, api.KindDeployment, store.ListOptions{})
			if err != nil {
				m.cfg.Logger.Warn("secret changed; listing deployments failed", "secret", name, "err", err)
				continue
			}
			for _, o := range deps {
				if usesSecret(&o.(*api.Deployment).Spec, name) {
					m.depl.Enqueue(o.GetObjectMeta().Name)
				}
			}
		}
	}
}
