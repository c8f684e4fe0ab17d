package manager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// pushQueueLen bounds the pushes waiting to be handled.
const pushQueueLen = 256

// QueuePush hands p to the loop without waiting for it to be handled.
func (m *Manager) QueuePush(p api.Push) error {
	select {
	case m.pushes <- p:
		return nil
	default:
		return api.ErrPushQueueFull
	}
}

// pushLoop handles queued pushes until ctx ends.
func (m *Manager) pushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-m.pushes:
			if _, err := m.HandlePush(ctx, p); err != nil && ctx.Err() == nil {
				m.cfg.Logger.Warn("handling a push", "delivery", p.Delivery, "ref", p.Ref, "err", err)
			}
		}
	}
}

// shortRef returns the branch or tag name of a full pushed ref.
func shortRef(ref string) string {
	if n, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return n
	}
	if n, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return n
	}
	return ref
}

// tracks reports whether a source following want (a short or full branch
// or tag name, as source.Mirrors.Resolve reads it) follows the pushed ref.
func tracks(want, pushed string) bool {
	if strings.HasPrefix(want, "refs/") {
		return want == pushed
	}
	return want == shortRef(pushed)
}

// HandlePush wakes every Deployment and ManifestSource that fetches the
// pushed repository and follows the pushed ref: each re-resolves its ref
// now instead of at its next resync. A deployment rolling out an older
// commit is superseded (the newest push wins; several pushes in a row
// coalesce in the work queue). Objects fetching the repository but
// following another ref are left alone, with a PushIgnored event.
func (m *Manager) HandlePush(ctx context.Context, p api.Push) (api.PushOutcome, error) {
	keys := map[string]bool{}
	for _, r := range p.Repos {
		if k := api.RepoKey(r); k != "" {
			keys[k] = true
		}
	}
	var out api.PushOutcome
	deleted := p.After == "" || strings.Trim(p.After, "0") == ""
	what := fmt.Sprintf("push to %s", p.Ref)
	if !deleted {
		what = fmt.Sprintf("push of %s to %s", api.ShortCommit(p.After), p.Ref)
	}
	if p.Delivery != "" {
		what += " (delivery " + p.Delivery + ")"
	}
	if err := m.pushDeployments(ctx, p, keys, deleted, what, &out); err != nil {
		return out, err
	}
	if err := m.pushSources(ctx, p, keys, deleted, what, &out); err != nil {
		return out, err
	}
	m.cfg.Logger.Info("push", "delivery", p.Delivery, "ref", p.Ref, "after", p.After, "triggered", out.Triggered, "ignored", out.Ignored)
	return out, nil
}

// rollingOut reports whether d has a rollout of commit in flight (then a
// push of that commit need not cancel it).
func (m *Manager) rollingOut(ctx context.Context, d *api.Deployment, commit string) bool {
	cur := d.Status.CurrentRollout
	if cur == nil || cur.State != api.RolloutRunning || commit == "" {
		return false
	}
	ro, err := m.deps.Store.GetRollout(ctx, cur.ID)
	return err == nil && !ro.Done() && ro.Commit == commit
}

// SyncSource asks for the ManifestSource name to be synced now. It
// returns the request's id: the source's status.syncHandled equals it
// once the sync is done (its outcome is then in the status).
func (m *Manager) SyncSource(ctx context.Context, name string) (string, error) {
	b := make([]byte, 6)
	rand.Read(b)
	id := hex.EncodeToString(b)
	for attempt := 0; ; attempt++ {
		o, err := m.cfg.Store.Get(ctx, api.KindManifestSource, name)
		if err != nil {
			return "", err
		}
		ms := o.(*api.ManifestSource)
		ms.Status.SyncRequested = id
		_, err = m.cfg.Store.UpdateStatus(ctx, ms)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	m.srcs.Supersede(name, nil)
	return id, nil
}

// pushDeployments wakes the deployments that follow the pushed ref (a
// rollout of the pushed commit in flight is left to finish) and records
// why the others ignore it.
func (m *Manager) pushDeployments(ctx context.Context, p api.Push, keys map[string]bool, deleted bool, what string, out *api.PushOutcome) error {
	deps, err := m.cfg.Store.List(ctx, api.KindDeployment, store.ListOptions{})
	if err != nil {
		return err
	}
	for _, o := range deps {
		d := o.(*api.Deployment)
		if !keys[api.RepoKey(d.Spec.Source.Repo)] {
			continue
		}
		ref := d.Spec.Source.Ref
		if ref == "" {
			ref = api.DefaultRef
		}
		reason := ""
		switch {
		case deleted:
			reason = "the ref was deleted"
		case d.Spec.Source.Commit != "":
			reason = "the deployment pins commit " + api.ShortCommit(d.Spec.Source.Commit)
		case !tracks(ref, p.Ref):
			reason = "the deployment follows " + ref
		case d.Status.Pin != nil && d.Status.Pin.Generation == d.Metadata.Generation:
			// An action's pin (rollback, redeploy) holds it: the
			// reconcile records PushIgnored with the new commit, once per
			// commit, whether a webhook or the resync finds it.
			out.Ignored = append(out.Ignored, api.Ref(d))
			if m.depl != nil {
				m.depl.Enqueue(d.Metadata.Name)
			}
			continue
		}
		if reason != "" {
			out.Ignored = append(out.Ignored, api.Ref(d))
			m.events.Record(ctx, &api.Event{Type: api.EventPushIgnored, Severity: api.SeverityInfo, Object: api.Ref(d), Message: what + " ignored: " + reason})
			continue
		}
		out.Triggered = append(out.Triggered, api.Ref(d))
		m.events.Record(ctx, &api.Event{Type: api.EventPushReceived, Severity: api.SeverityInfo, Object: api.Ref(d), Message: what + ": resolving the branch again"})
		if m.depl == nil {
			continue
		}
		if m.rollingOut(ctx, d, p.After) {
			m.depl.Enqueue(d.Metadata.Name)
			continue
		}
		// The push is recorded in the store: the rollout of its commit
		// records trigger webhook, and the status write wakes the
		// control plane that reconciles the deployment, also when it is
		// not this one (several may share one database).
		cur, err := m.recordPush(ctx, d.Metadata.Name, p)
		if err != nil {
			m.cfg.Logger.Warn("recording a push", "deployment", d.Metadata.Name, "delivery", p.Delivery, "err", err)
		}
		m.depl.Supersede(d.Metadata.Name, cur)
	}
	return nil
}

// recordPush writes p into the deployment's status.lastPush and returns
// the deployment as written (nil when it could not be written).
func (m *Manager) recordPush(ctx context.Context, name string, p api.Push) (api.Object, error) {
	rec := &api.PushRecord{Commit: p.After, Ref: p.Ref, Delivery: p.Delivery}
	if !p.Received.IsZero() {
		rec.Received = api.NewTime(p.Received)
	}
	for attempt := 0; ; attempt++ {
		o, err := m.cfg.Store.Get(ctx, api.KindDeployment, name)
		if err != nil {
			return nil, err
		}
		d := o.(*api.Deployment)
		d.Status.LastPush = rec
		n, err := m.cfg.Store.UpdateStatus(ctx, d)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		return n, err
	}
}

// pushSources wakes the manifest sources that follow the pushed branch.
func (m *Manager) pushSources(ctx context.Context, p api.Push, keys map[string]bool, deleted bool, what string, out *api.PushOutcome) error {
	srcs, err := m.cfg.Store.List(ctx, api.KindManifestSource, store.ListOptions{})
	if err != nil {
		return err
	}
	for _, o := range srcs {
		ms := o.(*api.ManifestSource)
		if !keys[api.RepoKey(ms.Spec.Repo)] {
			continue
		}
		branch := ms.Spec.Branch
		if branch == "" {
			branch = api.DefaultManifestBranch
		}
		if deleted || !tracks(branch, p.Ref) {
			out.Ignored = append(out.Ignored, api.Ref(ms))
			m.events.Record(ctx, &api.Event{Type: api.EventPushIgnored, Severity: api.SeverityInfo, Object: api.Ref(ms), Message: what + " ignored: the source follows " + branch})
			continue
		}
		out.Triggered = append(out.Triggered, api.Ref(ms))
		m.events.Record(ctx, &api.Event{Type: api.EventPushReceived, Severity: api.SeverityInfo, Object: api.Ref(ms), Message: what + ": syncing"})
		m.srcs.Enqueue(ms.Metadata.Name)
	}
	return nil
}
