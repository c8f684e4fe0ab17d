package deployment

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
)

// TestCause: the trigger a rollout records says what caused it, from
// what the store holds, and the action request it carries out is named.
func TestCause(t *testing.T) {
	const gen = 4
	pin := &api.CommitPin{ID: "p1", Commit: c1, Reason: api.TriggerRollback, Generation: gen, By: "user:alice"}
	push := &api.PushRecord{Commit: c2, Ref: "refs/heads/main", Delivery: "d-1"}
	owned := map[string]string{api.AnnotationOwner: "ManifestSource/infra"}
	dir := map[string]string{api.AnnotationOwner: "Directory:/etc/bakery/manifests"}
	for _, tc := range []struct {
		name    string
		ann     map[string]string
		s       api.DeploymentStatus
		commit  string
		restart bool
		pin     *api.CommitPin
		trigger string // decide's, before cause
		by      string
		want    [3]string // trigger, by, request
	}{
		{"a new commit found on the branch", nil, api.DeploymentStatus{ObservedGeneration: gen, Commit: c1}, c2, false, nil,
			api.TriggerApply, controllerName, [3]string{api.TriggerApply, controllerName, ""}},
		{"a new commit a webhook pushed", nil, api.DeploymentStatus{ObservedGeneration: gen, Commit: c1, LastPush: push}, c2, false, nil,
			api.TriggerApply, controllerName, [3]string{api.TriggerWebhook, "webhook (delivery d-1)", ""}},
		{"a webhook's commit already rolled out: drift repair", nil, api.DeploymentStatus{ObservedGeneration: gen, Commit: c2, LastPush: push}, c2, false, nil,
			api.TriggerDriftRepair, controllerName, [3]string{api.TriggerDriftRepair, controllerName, ""}},
		{"an older push, a newer commit", nil, api.DeploymentStatus{ObservedGeneration: gen, Commit: c1, LastPush: &api.PushRecord{Commit: c1}}, c2, false, nil,
			api.TriggerApply, controllerName, [3]string{api.TriggerApply, controllerName, ""}},
		{"a spec a ManifestSource wrote", owned, api.DeploymentStatus{ObservedGeneration: gen - 1, Commit: c1}, c1, false, nil,
			api.TriggerApply, controllerName, [3]string{api.TriggerManifestSource, "ManifestSource/infra", ""}},
		{"a spec a watched directory wrote, not rolled out yet", dir, api.DeploymentStatus{ObservedGeneration: gen - 1, Commit: c1}, c1, false, nil,
			api.TriggerApply, controllerName, [3]string{api.TriggerManifestSource, "Directory:/etc/bakery/manifests", ""}},
		// The push is the nearer cause (it superseded the rollout of the
		// synced generation, which this rollout carries out too).
		{"a spec a watched directory wrote, with a pushed commit", dir, api.DeploymentStatus{ObservedGeneration: gen - 1, Commit: c1, LastPush: push}, c2, false, nil,
			api.TriggerApply, controllerName, [3]string{api.TriggerWebhook, "webhook (delivery d-1)", ""}},
		{"an owned object's spec applied through the API", owned, api.DeploymentStatus{ObservedGeneration: gen - 1, AppliedBy: &api.AppliedBy{By: "ci", Generation: gen}}, c1, false, nil,
			api.TriggerApply, "ci", [3]string{api.TriggerApply, "ci", ""}},
		{"a new commit of an owned object's spec", owned, api.DeploymentStatus{ObservedGeneration: gen, Commit: c1}, c2, false, nil,
			api.TriggerApply, controllerName, [3]string{api.TriggerApply, controllerName, ""}},
		{"a rollback pin not carried out yet", nil, api.DeploymentStatus{ObservedGeneration: gen, Commit: c2, Pin: pin}, c1, false, pin,
			api.TriggerRollback, "user:alice", [3]string{api.TriggerRollback, "user:alice", "p1"}},
		{"a rollback pin carried out: drift repair carries no request", nil, api.DeploymentStatus{ObservedGeneration: gen, Commit: c1, Pin: pin, LastRequest: &api.RequestOutcome{ID: "p1"}}, c1, false, pin,
			api.TriggerDriftRepair, controllerName, [3]string{api.TriggerDriftRepair, controllerName, ""}},
		{"a pin from before request ids", nil, api.DeploymentStatus{ObservedGeneration: gen, Commit: c2, Pin: &api.CommitPin{Commit: c1, Reason: api.TriggerRedeploy, Generation: gen}}, c1, false, &api.CommitPin{Commit: c1, Reason: api.TriggerRedeploy, Generation: gen},
			api.TriggerRedeploy, controllerName, [3]string{api.TriggerRedeploy, controllerName, ""}},
		{"a restart, while a pin stands", nil, api.DeploymentStatus{ObservedGeneration: gen, Commit: c1, Pin: pin, Restart: "r2", RestartDone: "r1"}, c1, true, pin,
			api.TriggerRestart, "ops", [3]string{api.TriggerRestart, "ops", "r2"}},
		{"deploy now", nil, api.DeploymentStatus{ObservedGeneration: gen, Commit: c1, DeployRequest: &api.DeployRequest{ID: "d1", Generation: gen}}, c2, false, nil,
			api.TriggerDeployNow, "user:dan", [3]string{api.TriggerDeployNow, "user:dan", "d1"}},
	} {
		d := &api.Deployment{Metadata: api.ObjectMeta{Name: "web", Generation: gen, Annotations: tc.ann}, Status: tc.s}
		rv := &revision{commit: tc.commit, pin: tc.pin, restart: tc.restart, trigger: tc.trigger, by: tc.by}
		rv.cause(d)
		if got := [3]string{rv.trigger, rv.by, rv.request}; got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestRequestDone: the status names the request with the rollout that
// carried it out and how it ended; a superseded rollout leaves it
// pending; a reconcile that needed no rollout says so.
func TestRequestDone(t *testing.T) {
	p := &rolloutPlan{request: "r1", revision: 3, commit: c1}
	ro := &api.Rollout{ID: "web-3-ab"}
	for _, tc := range []struct {
		name  string
		p     *rolloutPlan
		ro    *api.Rollout
		state string
		want  *api.RequestOutcome
	}{
		{"succeeded", p, ro, api.RolloutSucceeded, &api.RequestOutcome{ID: "r1", Rollout: "web-3-ab", State: api.RolloutSucceeded, Revision: 3, Commit: c1}},
		{"failed", p, ro, api.RolloutFailed, &api.RequestOutcome{ID: "r1", Rollout: "web-3-ab", State: api.RolloutFailed, Message: "boom", Revision: 3, Commit: c1}},
		{"superseded", p, ro, api.RolloutSuperseded, nil},
		{"no request", &rolloutPlan{revision: 3}, ro, api.RolloutSucceeded, nil},
		{"converged", p, nil, "", &api.RequestOutcome{ID: "r1", State: api.RequestConverged,
			Message: "nothing to roll out: the nodes run revision 3 (commit " + api.ShortCommit(c1) + ")", Revision: 3, Commit: c1}},
	} {
		var s api.DeploymentStatus
		msg := ""
		if tc.state == api.RolloutFailed {
			msg = "boom"
		}
		requestDone(&s, tc.p, tc.ro, tc.state, msg)
		if diff := cmp.Diff(tc.want, s.LastRequest); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", tc.name, diff)
		}
	}
}

// TestSupersedesOnPush: a webhook's push of a new commit, recorded in the
// status by whichever control plane received it, supersedes a rollout in
// flight (every control plane's watch sees the change); the same push
// again does not, nor do the loop's own status writes.
func TestSupersedesOnPush(t *testing.T) {
	r := &Reconciler{}
	d := &api.Deployment{Status: api.DeploymentStatus{Commit: c1}}
	base := r.Supersedes(d)
	d.Status.LastPush = &api.PushRecord{Commit: c2, Delivery: "d-1"}
	pushed := r.Supersedes(d)
	if pushed == base {
		t.Fatal("a push of a new commit does not supersede")
	}
	d.Status.LastPush = &api.PushRecord{Commit: c2, Delivery: "d-2"}
	d.Status.LastRequest = &api.RequestOutcome{ID: "x", State: api.RolloutSucceeded}
	d.Status.Commit = c2
	if r.Supersedes(d) != pushed {
		t.Fatal("a redelivery of the same commit, or the loop's own status write, supersedes")
	}
}
