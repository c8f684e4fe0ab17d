package server_test

import (
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/store"
)

// TestCallerRecorded: the API records who asks. An apply that creates or
// changes a deployment's spec records the token in status.appliedBy (same
// transaction; not for unchanged specs or dry runs), and every action
// records it with the request (pin.by, restartBy, deployRequest.by), from
// where the loop puts it into the rollout's triggeredBy.
func TestCallerRecorded(t *testing.T) {
	mod, _ := withManager(t)
	e := newEnv(t, mod)
	ctx := t.Context()
	ci, hash, _ := auth.NewToken()
	if err := e.st.CreateToken(ctx, store.Token{Name: "ci", Hash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	status := func() api.DeploymentStatus {
		t.Helper()
		o, err := e.st.Get(ctx, api.KindDeployment, "web")
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.Deployment).Status
	}
	applied := func() string {
		a := status().AppliedBy
		if a == nil {
			return "<nil>"
		}
		return a.By + "@" + string(rune('0'+a.Generation))
	}

	want(t, e.reqToken("POST", "/api/v1/apply?dryRun=true", "application/yaml", deployYAML, ci), 200)
	if _, err := e.st.Get(ctx, api.KindDeployment, "web"); err == nil {
		t.Fatal("a dry run stored the deployment")
	}
	want(t, e.req("POST", "/api/v1/apply", "application/yaml", deployYAML), 200)
	if got := applied(); got != "admin@1" {
		t.Fatalf("appliedBy after create: %s", got)
	}
	// Unchanged: the applier of generation 1 stays.
	want(t, e.reqToken("POST", "/api/v1/apply", "application/yaml", deployYAML, ci), 200)
	if got := applied(); got != "admin@1" {
		t.Fatalf("appliedBy after an unchanged apply: %s", got)
	}
	changed := strings.Replace(deployYAML, "./server", "./server --v2", 1)
	want(t, e.reqToken("POST", "/api/v1/apply?dryRun=true", "application/yaml", changed, ci), 200)
	if got := applied(); got != "admin@1" {
		t.Fatalf("appliedBy after a dry run: %s", got)
	}
	want(t, e.reqToken("POST", "/api/v1/apply", "application/yaml", changed, ci), 200)
	if got := applied(); got != "ci@2" {
		t.Fatalf("appliedBy after ci changed the spec: %s", got)
	}

	// Actions.
	c1, c2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	for i, c := range []string{c1, c2} {
		if err := e.st.CreateRollout(ctx, &api.Rollout{ID: "web-" + string(rune('1'+i)) + "-aaaa", Deployment: "web", Revision: int64(i + 1), Commit: c,
			Trigger: api.TriggerApply, State: api.RolloutSucceeded, CreatedAt: api.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	o, _ := e.st.Get(ctx, api.KindDeployment, "web")
	d := o.(*api.Deployment)
	d.Status.Commit, d.Status.Revision = c2, 2
	if _, err := e.st.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
	want(t, e.reqToken("POST", "/api/v1/deployments/web/actions/rollback", "", "", ci), 202)
	if p := status().Pin; p == nil || p.By != "ci" || p.Reason != api.TriggerRollback {
		t.Fatalf("rollback pin: %+v", p)
	}
	want(t, e.req("POST", "/api/v1/deployments/web/actions/redeploy", "application/json", `{"commit":"`+c2+`"}`), 202)
	if p := status().Pin; p == nil || p.By != "admin" || p.Reason != api.TriggerRedeploy {
		t.Fatalf("redeploy pin: %+v", p)
	}
	want(t, e.reqToken("POST", "/api/v1/deployments/web/actions/restart", "", "", ci), 202)
	if s := status(); s.RestartBy != "ci" || s.Restart == "" {
		t.Fatalf("restart: %q by %q", s.Restart, s.RestartBy)
	}
	want(t, e.req("POST", "/api/v1/deployments/web/actions/deploy", "", ""), 202)
	if s := status(); s.Pin != nil || s.DeployRequest == nil || s.DeployRequest.By != "admin" || s.DeployRequest.Generation != 2 || s.DeployRequest.ID == "" {
		t.Fatalf("deploy: pin %+v, request %+v", s.Pin, s.DeployRequest)
	}
}
