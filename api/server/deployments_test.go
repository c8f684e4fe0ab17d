package server_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/reconciler/manager"
	"bakery.dev/bakery/reconciler/nodeconn"
)

// withManager gives the server the real reconciler Manager (its
// controllers are not started: actions are recorded, nothing rolls out).
func withManager(t *testing.T) (func(*server.Config), **manager.Manager) {
	var mgr *manager.Manager
	return func(c *server.Config) {
		id, err := nodeconn.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "ssh"))
		if err != nil {
			t.Fatal(err)
		}
		mgr, err = manager.New(manager.Config{Store: c.Store, Identity: id, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		c.Loop = mgr
	}, &mgr
}

func TestDeploymentActionsAndRollouts(t *testing.T) {
	mod, _ := withManager(t)
	e := newEnv(t, mod)
	want(t, e.req("POST", "/api/v1/deployments", "application/yaml", deployment("web")), 201)

	// Nothing rolled out yet: restart and rollback have nothing to act on.
	r := e.req("POST", "/api/v1/deployments/web/actions/restart", "", "")
	want(t, r, 409)
	r = e.req("POST", "/api/v1/deployments/web/actions/rollback", "", "")
	want(t, r, 409)
	if !strings.Contains(r.err(t).Message, "no earlier revision") {
		t.Fatalf("rollback message %q", r.err(t).Message)
	}
	want(t, e.req("POST", "/api/v1/deployments/web/actions/reboot", "", ""), 404)
	want(t, e.req("POST", "/api/v1/deployments/missing/actions/deploy", "", ""), 404)
	r = e.req("POST", "/api/v1/deployments/web/actions/redeploy", "application/json", `{"commit":"abc"}`)
	want(t, r, 400)
	want(t, e.req("POST", "/api/v1/deployments/web/actions/redeploy", "application/json", `{"commitx":"abc"}`), 400)

	// Two succeeded revisions in the history: rollback pins the older one.
	ctx := t.Context()
	c1, c2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	for i, c := range []string{c1, c2} {
		ro := &api.Rollout{ID: fmt.Sprintf("web-%d-aaaa", i+1), Deployment: "web", Revision: int64(i + 1), Commit: c,
			Trigger: api.TriggerApply, State: api.RolloutSucceeded, CreatedAt: api.Now()}
		if err := e.st.CreateRollout(ctx, ro); err != nil {
			t.Fatal(err)
		}
	}
	o, _ := e.st.Get(ctx, api.KindDeployment, "web")
	d := o.(*api.Deployment)
	d.Status.Commit, d.Status.Revision = c2, 2
	if _, err := e.st.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
	r = e.req("POST", "/api/v1/deployments/web/actions/rollback", "", "")
	want(t, r, 202)
	var ar api.ActionResponse
	ar = api.ActionResponse{}
	r.decode(t, &ar)
	if p := ar.Deployment.Status.Pin; p == nil || p.Commit != c1 || p.Reason != api.TriggerRollback || p.Revision != 1 || p.Generation != 1 {
		t.Fatalf("rollback pin: %+v", ar.Deployment.Status.Pin)
	}
	want(t, e.req("POST", "/api/v1/deployments/web/actions/rollback", "application/json", `{"toRevision": 7}`), 409)
	// deploy clears the pin; redeploy pins the given commit; restart records a request.
	r = e.req("POST", "/api/v1/deployments/web/actions/deploy", "", "")
	want(t, r, 202)
	ar = api.ActionResponse{}
	r.decode(t, &ar)
	if ar.Deployment.Status.Pin != nil {
		t.Fatal("deploy must clear the pin")
	}
	r = e.req("POST", "/api/v1/deployments/web/actions/redeploy", "application/json", `{"commit":"`+c2+`"}`)
	want(t, r, 202)
	ar = api.ActionResponse{}
	r.decode(t, &ar)
	if p := ar.Deployment.Status.Pin; p == nil || p.Commit != c2 || p.Reason != api.TriggerRedeploy {
		t.Fatalf("redeploy pin: %+v", p)
	}
	r = e.req("POST", "/api/v1/deployments/web/actions/restart", "", "")
	want(t, r, 202)
	ar = api.ActionResponse{}
	r.decode(t, &ar)
	if ar.Deployment.Status.Restart == "" || ar.Deployment.Status.Restart == ar.Deployment.Status.RestartDone {
		t.Fatalf("restart not recorded: %+v", ar.Deployment.Status)
	}

	// History and logs.
	r = e.req("GET", "/api/v1/deployments/web/rollouts", "", "")
	want(t, r, 200)
	var list api.RolloutList
	r.decode(t, &list)
	if len(list.Items) != 2 || list.Items[0].Revision != 2 {
		t.Fatalf("history: %+v", list.Items)
	}
	lines := []api.LogLine{}
	for i := 1; i <= 5; i++ {
		lines = append(lines, api.LogLine{Seq: int64(i), Node: "n1", Stream: api.StreamStdout, Time: api.Now(), Text: fmt.Sprintf("line %d", i)})
	}
	if err := e.st.AppendLogs(ctx, "web-2-aaaa", lines); err != nil {
		t.Fatal(err)
	}
	r = e.req("GET", "/api/v1/rollouts/web-2-aaaa/logs?after=2&limit=2", "", "")
	want(t, r, 200)
	var page api.LogPage
	r.decode(t, &page)
	if len(page.Items) != 2 || page.Items[0].Text != "line 3" || page.Next != 4 {
		t.Fatalf("log page: %+v", page)
	}
	want(t, e.req("GET", "/api/v1/rollouts/web-2-aaaa", "", ""), 200)
	want(t, e.req("GET", "/api/v1/rollouts/nope-1", "", ""), 404)
	want(t, e.req("GET", "/api/v1/rollouts/Bad..id/logs", "", ""), 400)
	want(t, e.req("GET", "/api/v1/rollouts/web-2-aaaa/logs?after=x", "", ""), 400)
}

func TestActionsWithoutLoop(t *testing.T) {
	e := newEnv(t)
	want(t, e.req("POST", "/api/v1/deployments", "application/yaml", deployment("web")), 201)
	want(t, e.req("POST", "/api/v1/deployments/web/actions/deploy", "", ""), 503)
	want(t, e.req("POST", "/api/v1/nodes/x/verify", "", ""), 503)
}

func TestRuntimeLogsRefusals(t *testing.T) {
	mod, _ := withManager(t)
	e := newEnv(t, mod)
	want(t, e.req("POST", "/api/v1/deployments", "application/yaml", deployment("web")), 201)
	want(t, e.req("GET", "/api/v1/deployments/missing/logs", "", ""), 404)
	r := e.req("GET", "/api/v1/deployments/web/logs", "", "")
	want(t, r, 409)
	if !strings.Contains(r.err(t).Message, "runs on no node yet") {
		t.Fatalf("message %q", r.err(t).Message)
	}
	want(t, e.req("GET", "/api/v1/deployments/web/logs?lines=x", "", ""), 400)
	want(t, e.req("GET", "/api/v1/deployments/web/logs?follow=maybe", "", ""), 400)
	want(t, e.req("GET", "/api/v1/deployments/web/logs?schedule=../x", "", ""), 400)
	want(t, e.req("GET", "/api/v1/deployments/web/logs?schedule=a-name-longer-than-20", "", ""), 400)
	e2 := newEnv(t)
	want(t, e2.req("POST", "/api/v1/deployments", "application/yaml", deployment("web")), 201)
	want(t, e2.req("GET", "/api/v1/deployments/web/logs", "", ""), 503)
}
