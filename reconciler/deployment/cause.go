package deployment

import (
	"fmt"
	"strings"

	"bakery.dev/bakery/api"
)

// cause completes what decide worked out with what the reconcile carries
// out and why, from what the store holds (so that it holds whichever
// control plane received the request, the push or the manifests):
//
//   - request: the id of the action request carried out (see
//     pendingRequest);
//   - the true trigger of a new revision nobody asked for by an action or
//     an API apply: webhook when the new commit is the one a signed
//     webhook's push reported (status.lastPush), else manifest-source
//     when a manifest sync (a ManifestSource, or a watched directory)
//     wrote the spec generation not rolled out yet.
func (rv *revision) cause(d *api.Deployment) {
	rv.request = pendingRequest(d, rv.pin, rv.restart)
	if rv.trigger != api.TriggerApply || rv.by != controllerName {
		return
	}
	s := &d.Status
	gen := d.Metadata.Generation
	// A new commit a push reported is the nearer cause: a manifest sync's
	// generation whose own rollout the push superseded is carried out by
	// the same rollout.
	if p := s.LastPush; p != nil && p.Commit == rv.commit && rv.commit != s.Commit {
		rv.trigger, rv.by = api.TriggerWebhook, webhookBy(p)
		return
	}
	if owner := d.Metadata.Annotations[api.AnnotationOwner]; s.ObservedGeneration != gen && manifestOwner(owner) {
		rv.trigger, rv.by = api.TriggerManifestSource, owner
	}
}

// manifestOwner reports whether an owner annotation names a manifest sync.
func manifestOwner(owner string) bool {
	return strings.HasPrefix(owner, api.KindManifestSource+"/") || strings.HasPrefix(owner, "Directory:")
}

// webhookBy is TriggeredBy of a rollout a webhook's push caused.
func webhookBy(p *api.PushRecord) string {
	if p.Delivery != "" {
		return fmt.Sprintf("webhook (delivery %s)", p.Delivery)
	}
	return "webhook"
}

// pendingRequest returns the id of the action request a reconcile of d
// carries out ("": none): a restart not done yet, a deploy request, or
// the commit pin in effect (redeploy, rollback; pin is nil when the spec
// changed since) as long as status.lastRequest does not say it was
// carried out.
func pendingRequest(d *api.Deployment, pin *api.CommitPin, restart bool) string {
	s := &d.Status
	switch {
	case restart:
		return s.Restart
	case s.DeployRequest != nil:
		return s.DeployRequest.ID
	case pin != nil && pin.ID != "" && (s.LastRequest == nil || s.LastRequest.ID != pin.ID):
		return pin.ID
	}
	return ""
}

// requestDone records in s how the request p carried out ended: the
// rollout ro in its final state (a superseded rollout, or one still
// running because it waits for a node, leaves the request to a later
// reconcile), or, with ro nil, that no rollout was needed.
func requestDone(s *api.DeploymentStatus, p *rolloutPlan, ro *api.Rollout, state, msg string) {
	if p.request == "" || state == api.RolloutSuperseded || state == api.RolloutRunning {
		return
	}
	out := &api.RequestOutcome{ID: p.request, State: state, Message: msg, Revision: p.revision, Commit: p.commit}
	if ro != nil {
		out.Rollout = ro.ID
	} else {
		out.State = api.RequestConverged
		out.Message = fmt.Sprintf("nothing to roll out: the nodes run revision %d (commit %s)", p.revision, api.ShortCommit(p.commit))
	}
	s.LastRequest = out
}
