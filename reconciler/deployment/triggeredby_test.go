package deployment

import (
	"testing"

	"bakery.dev/bakery/api"
)

func TestTriggeredBy(t *testing.T) {
	const gen = 4
	pin := &api.CommitPin{Commit: c1, Reason: api.TriggerRollback, Generation: gen, By: "user:alice"}
	for _, tc := range []struct {
		name        string
		s           api.DeploymentStatus
		trigger     string
		pin         *api.CommitPin
		wantTrigger string
		wantBy      string
	}{
		{"a new commit on the branch", api.DeploymentStatus{ObservedGeneration: gen}, api.TriggerApply, nil, api.TriggerApply, "controller"},
		{"drift repair", api.DeploymentStatus{ObservedGeneration: gen, AppliedBy: &api.AppliedBy{By: "x", Generation: gen}}, api.TriggerDriftRepair, nil, api.TriggerDriftRepair, "controller"},
		{"the first rollout of an applied spec", api.DeploymentStatus{ObservedGeneration: gen - 1, AppliedBy: &api.AppliedBy{By: "user:carol", Generation: gen}}, api.TriggerApply, nil, api.TriggerApply, "user:carol"},
		{"a later commit of an applied spec", api.DeploymentStatus{ObservedGeneration: gen, AppliedBy: &api.AppliedBy{By: "user:carol", Generation: gen}}, api.TriggerApply, nil, api.TriggerApply, "controller"},
		{"an older applier", api.DeploymentStatus{ObservedGeneration: gen - 1, AppliedBy: &api.AppliedBy{By: "user:carol", Generation: gen - 1}}, api.TriggerApply, nil, api.TriggerApply, "controller"},
		{"rollback pin", api.DeploymentStatus{Pin: pin}, api.TriggerRollback, pin, api.TriggerRollback, "user:alice"},
		{"pin without requester (older status)", api.DeploymentStatus{Pin: &api.CommitPin{Reason: api.TriggerRedeploy, Generation: gen}}, api.TriggerRedeploy, &api.CommitPin{Reason: api.TriggerRedeploy, Generation: gen}, api.TriggerRedeploy, "controller"},
		{"restart", api.DeploymentStatus{Restart: "r1", RestartBy: "ops"}, api.TriggerRestart, nil, api.TriggerRestart, "ops"},
		{"deploy now", api.DeploymentStatus{DeployRequest: &api.DeployRequest{ID: "d", By: "user:dan", Generation: gen}}, api.TriggerApply, nil, api.TriggerDeployNow, "user:dan"},
		{"deploy now, then the spec changed", api.DeploymentStatus{DeployRequest: &api.DeployRequest{ID: "d", By: "user:dan", Generation: gen - 1}, AppliedBy: &api.AppliedBy{By: "user:erin", Generation: gen}, ObservedGeneration: gen - 1}, api.TriggerApply, nil, api.TriggerApply, "user:erin"},
		{"deploy now found only drift", api.DeploymentStatus{DeployRequest: &api.DeployRequest{ID: "d", By: "user:dan", Generation: gen}}, api.TriggerDriftRepair, nil, api.TriggerDriftRepair, "controller"},
	} {
		d := &api.Deployment{Status: tc.s}
		trigger, by := triggeredBy(d, gen, tc.trigger, tc.pin)
		if trigger != tc.wantTrigger || by != tc.wantBy {
			t.Errorf("%s: %s by %s, want %s by %s", tc.name, trigger, by, tc.wantTrigger, tc.wantBy)
		}
	}
}
