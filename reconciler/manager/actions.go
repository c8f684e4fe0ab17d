package manager

import (
	"context"
	"fmt"
	"io"
	"slices"
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

// Exec runs a one-off command in a deployment's active release (see
// deployment.Exec).
func (m *Manager) Exec(ctx context.Context, name string, req api.ExecRequest, fn func(api.ExecLine)) (string, int, error) {
	return deployment.Exec(ctx, m.cfg.Store, m.connector(), m.cfg.Keyring, m.events, name, req, fn)
}

// ExecTerminal runs a one-off command on a terminal (see
// deployment.ExecTerminal).
func (m *Manager) ExecTerminal(ctx context.Context, name string, req api.ExecRequest, stdin io.Reader, out io.Writer, resize <-chan [2]int) (string, int, error) {
	return deployment.ExecTerminal(ctx, m.cfg.Store, m.connector(), m.cfg.Keyring, m.events, name, req, stdin, out, req.Rows, req.Cols, resize)
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

// watchKind calls fn with every change of kind's objects until ctx ends.
// A failed watch is retried with a capped backoff (what fn would have seen
// meanwhile is found by the resyncs). A new watch starts over, so fn also
// sees the objects as they are then.
func (m *Manager) watchKind(ctx context.Context, kind string, fn func(store.Event)) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		events, err := m.cfg.Store.Watch(ctx, store.WatchOptions{Kind: kind})
		if err != nil {
			m.cfg.Logger.Warn("watching failed; retrying", "kind", kind, "err", err, "in", delay)
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
			fn(ev)
		}
	}
}

// watchSecrets enqueues the deployments that use a Secret whenever it is
// written or deleted, so that a changed secret rolls them out at once
// rather than at the next resync. A missed change is still found by the
// resync (the secret hash is part of the revision).
func (m *Manager) watchSecrets(ctx context.Context) {
	m.watchKind(ctx, api.KindSecret, func(ev store.Event) {
		name := ev.Object.GetObjectMeta().Name
		deps, err := m.cfg.Store.List(ctx, api.KindDeployment, store.ListOptions{})
		if err != nil {
			m.cfg.Logger.Warn("secret changed; listing deployments failed", "secret", name, "err", err)
			return
		}
		for _, o := range deps {
			if usesSecret(&o.(*api.Deployment).Spec, name) {
				m.depl.Enqueue(o.GetObjectMeta().Name)
			}
		}
	})
}

// watchNodes enqueues every Deployment placed on a Node (spec.nodes or
// spec.nodeSelector) when the Node becomes Ready (its Ready condition
// turns true) or its spec or labels change, so that a node back from an
// outage gets what it missed at once rather than at the deployment's
// next retry. The deployments' own retries (capped backoff) and resyncs
// find what a missed event would have woken.
func (m *Manager) watchNodes(ctx context.Context) {
	seen := map[string]nodeWake{}
	m.watchKind(ctx, api.KindNode, func(ev store.Event) {
		n, ok := ev.Object.(*api.Node)
		if !ok {
			return
		}
		name := n.Metadata.Name
		if ev.Type == store.Deleted {
			delete(seen, name)
			return
		}
		cur := wakeOf(n)
		prev, known := seen[name]
		seen[name] = cur
		if why := wakeReason(prev, known, cur); why != "" {
			m.enqueuePlacedOn(ctx, n, why)
		}
	})
}

// nodeWake is what watchNodes compares between two versions of a Node.
type nodeWake struct {
	ready bool
	spec  string // generation and labels
}

// wakeReason says why a Node's change wakes its deployments ("": it
// does not): it became Ready, or its spec or labels changed. known is
// false for the first version seen.
func wakeReason(prev nodeWake, known bool, cur nodeWake) string {
	switch {
	case cur.ready && (!known || !prev.ready):
		return "node became Ready"
	case known && cur.spec != prev.spec:
		return "node spec or labels changed"
	}
	return ""
}

func wakeOf(n *api.Node) nodeWake {
	return nodeWake{ready: api.IsTrue(n.Status.Conditions, api.ConditionReady),
		spec: fmt.Sprint(n.Metadata.Generation, n.Metadata.Labels)}
}

// enqueuePlacedOn enqueues the deployments placed on node n: it is in
// their spec.nodes, their nodeSelector matches its labels, or their
// status says they run there.
func (m *Manager) enqueuePlacedOn(ctx context.Context, n *api.Node, why string) {
	deps, err := m.cfg.Store.List(ctx, api.KindDeployment, store.ListOptions{})
	if err != nil {
		m.cfg.Logger.Warn("listing deployments to wake for a node failed", "node", n.Metadata.Name, "err", err)
		return
	}
	var woken []string
	for _, o := range deps {
		d := o.(*api.Deployment)
		if placedOn(d, n) {
			m.depl.Enqueue(d.Metadata.Name)
			woken = append(woken, d.Metadata.Name)
		}
	}
	if len(woken) > 0 {
		m.cfg.Logger.Info("waking the deployments placed on a node", "node", n.Metadata.Name, "why", why, "deployments", len(woken))
	}
}

// placedOn reports whether deployment d runs, or is to run, on node n.
func placedOn(d *api.Deployment, n *api.Node) bool {
	name := n.Metadata.Name
	if slices.Contains(d.Spec.Nodes, name) {
		return true
	}
	if len(d.Spec.NodeSelector) > 0 && api.SelectorFromMap(d.Spec.NodeSelector).Matches(n.Metadata.Labels) {
		return true
	}
	for _, ns := range d.Status.Nodes {
		if ns.Node == name {
			return true
		}
	}
	return false
}
