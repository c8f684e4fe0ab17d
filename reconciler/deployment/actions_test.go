package deployment

import (
	"log/slog"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/internal/testenv"
)

// TestActionsRecordRequester: every action records who asked in the
// deployment's status, and the rollout the loop starts for it names them
// (triggeredBy is what the reconcile puts into Rollout.TriggeredBy).
func TestActionsRecordRequester(t *testing.T) {
	ctx := t.Context()
	st := testenv.FileStore(t)
	r := &Reconciler{Store: st.(Store), Logger: slog.New(slog.DiscardHandler)}
	// What the Manager's DeploymentAction does, less waking the loop.
	action := func(name string, req api.ActionRequest) (*api.Deployment, error) {
		if err := r.RecordAction(ctx, name, req); err != nil {
			return nil, err
		}
		o, err := st.Get(ctx, api.KindDeployment, name)
		if err != nil {
			return nil, err
		}
		return o.(*api.Deployment), nil
	}
	d := helloDeploymentFor("web", "/srv/git/web.git")
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	o, _ := st.Get(ctx, api.KindDeployment, "web")
	d = o.(*api.Deployment)
	gen := d.Metadata.Generation
	d.Status.Commit, d.Status.Revision, d.Status.SpecHash, d.Status.ObservedGeneration = c2, 2, specHash(&d.Spec), gen
	if _, err := st.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []*api.Rollout{
		{ID: "web-1-a", Deployment: "web", Revision: 1, Commit: c1, Trigger: api.TriggerApply, State: api.RolloutSucceeded},
		{ID: "web-2-b", Deployment: "web", Revision: 2, Commit: c2, Trigger: api.TriggerApply, State: api.RolloutSucceeded},
	} {
		if err := st.(store.Rollouts).CreateRollout(ctx, ro); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		req api.ActionRequest
		// trigger is what the reconcile computes for the new status.
		trigger     string
		wantTrigger string
	}{
		{api.ActionRequest{Action: api.ActionRollback, By: "user:alice"}, api.TriggerRollback, api.TriggerRollback},
		{api.ActionRequest{Action: api.ActionRedeploy, Commit: c2, By: "laptop"}, api.TriggerRedeploy, api.TriggerRedeploy},
		{api.ActionRequest{Action: api.ActionRestart, By: "user:bob"}, api.TriggerRestart, api.TriggerRestart},
		// Deploy now finds a new commit: a new revision, trigger apply in
		// the reconcile, which becomes deploy-now.
		{api.ActionRequest{Action: api.ActionDeploy, By: "ci"}, api.TriggerApply, api.TriggerDeployNow},
	} {
		got, err := action("web", tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.req.Action, err)
		}
		pin := got.Status.Pin
		if pin != nil && pin.Generation != gen {
			pin = nil
		}
		trigger, by := triggeredBy(got, gen, tc.trigger, pin)
		if trigger != tc.wantTrigger || by != tc.req.By {
			t.Errorf("%s by %s: the rollout would be %s by %s", tc.req.Action, tc.req.By, trigger, by)
		}
		// Undo the restart request for the next case (the loop would
		// carry it out).
		if tc.req.Action == api.ActionRestart {
			got.Status.RestartDone = got.Status.Restart
			if _, err := st.UpdateStatus(ctx, got); err != nil {
				t.Fatal(err)
			}
		}
	}
	o, _ = st.Get(ctx, api.KindDeployment, "web")
	d = o.(*api.Deployment)
	if d.Status.Pin != nil || d.Status.DeployRequest == nil || d.Status.DeployRequest.By != "ci" || d.Status.RestartBy != "user:bob" {
		t.Fatalf("status after deploy now: pin %+v, deploy request %+v, restartBy %q", d.Status.Pin, d.Status.DeployRequest, d.Status.RestartBy)
	}
	// Starting the deploy-now rollout clears the request; a newer one
	// stays.
	s := d.Status
	clearDeployRequest(&s, "other")
	if s.DeployRequest == nil {
		t.Fatal("a newer deploy request was cleared")
	}
	clearDeployRequest(&s, d.Status.DeployRequest.ID)
	if s.DeployRequest != nil {
		t.Fatal("the deploy request carried out stays")
	}
}
