package main

import (
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// TestRolloutUndoResume: rollout history shows a revision's recorded
// spec; undo restores it (the output says what came back and how to
// resume), get shows the pin in PINNED, resume clears it, and a resume
// with no pin is refused.
func TestRolloutUndoResume(t *testing.T) {
	e := newTestEnv(t, true)
	must(t, "", "apply", "-f", manifestDir(t))
	ctx := t.Context()
	o, err := e.store.Get(ctx, api.KindDeployment, "hello")
	if err != nil {
		t.Fatal(err)
	}
	d := o.(*api.Deployment)
	d.Default()
	spec1 := d.Spec
	spec2 := d.Spec
	spec2.Run.Env = []api.EnvVar{{Name: "GREETING", Value: "refused"}}
	const c1, c2 = "a111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	rs := any(e.store).(store.Rollouts)
	for _, ro := range []*api.Rollout{
		{ID: "hello-1-aaaa", Deployment: "hello", Revision: 1, Commit: c1, Generation: 1, Trigger: api.TriggerApply, State: api.RolloutSucceeded, Spec: &spec1},
		{ID: "hello-2-bbbb", Deployment: "hello", Revision: 2, Commit: c2, Generation: 1, Trigger: api.TriggerApply, State: api.RolloutSucceeded, Spec: &spec2},
		{ID: "hello-0-cccc", Deployment: "hello", Revision: 3, Commit: c2, Generation: 1, Trigger: api.TriggerApply, State: api.RolloutFailed},
	} {
		if err := rs.CreateRollout(ctx, ro); err != nil {
			t.Fatal(err)
		}
	}
	d.Spec = spec2
	if o, err = e.store.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	d = o.(*api.Deployment)
	d.Status.Commit, d.Status.Revision, d.Status.ObservedGeneration = c2, 2, d.Metadata.Generation
	if _, err := e.store.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}

	y := must(t, "", "rollout", "history", "deployment/hello", "--revision", "1", "-o", "yaml")
	for _, want := range []string{"id: hello-1-aaaa", "commit: " + c1, "spec:", "value: hello", "command: node server.js"} {
		if !strings.Contains(y, want) {
			t.Errorf("history --revision 1 -o yaml lacks %q:\n%s", want, y)
		}
	}
	out := must(t, "", "rollout", "history", "deployment/hello", "--revision", "3")
	if !strings.Contains(out, "hello-0-cccc (apply, failed)") || !strings.Contains(out, "<not recorded") {
		t.Errorf("history --revision 3:\n%s", out)
	}
	if r := bakery(t, "", "rollout", "history", "deployment/hello", "--revision", "9"); r.code == 0 || !strings.Contains(r.stderr, "no rollout of revision 9") {
		t.Errorf("history of a missing revision: exit %d, %s", r.code, r.stderr)
	}
	if r := bakery(t, "", "rollout", "history", "deployment/hello", "-o", "yaml"); r.code == 0 {
		t.Errorf("-o without --revision: exit 0")
	}

	out = must(t, "", "rollout", "undo", "deployment/hello")
	for _, want := range []string{"rolling back to revision 1 (commit a11111111111): its spec is restored as generation 3",
		"new commits on main are not rolled out until 'bakery rollout resume deployment/hello'"} {
		if !strings.Contains(out, want) {
			t.Errorf("undo output lacks %q:\n%s", want, out)
		}
	}
	y = must(t, "", "get", "deployment", "hello", "-o", "yaml")
	if !strings.Contains(y, "value: hello") || strings.Contains(y, "value: refused") {
		t.Errorf("the undo did not restore revision 1's env:\n%s", y)
	}
	if f := strings.Fields(lines(must(t, "", "get", "deployments"))[1]); f[4] != "rollback:1" {
		t.Errorf("PINNED after the undo: %q", f)
	}
	if out := must(t, "", "describe", "deployment", "hello"); !strings.Contains(out, "Pinned") || !strings.Contains(out, "RolledBack") {
		t.Errorf("describe after the undo lacks the pin:\n%s", out)
	}

	out = must(t, "", "rollout", "resume", "deployment/hello")
	if !strings.Contains(out, "deployment.bakery.dev/hello resumed: following main again") {
		t.Errorf("resume output:\n%s", out)
	}
	if f := strings.Fields(lines(must(t, "", "get", "deployments"))[1]); f[4] != "-" {
		t.Errorf("PINNED after resume: %q", f)
	}
	if r := bakery(t, "", "rollout", "resume", "deployment/hello"); r.code == 0 || !strings.Contains(r.stderr, "not pinned") {
		t.Errorf("resume with no pin: exit %d, %s", r.code, r.stderr)
	}
}
