package main

import (
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// TestMaintenance: maintenance on writes spec.ingress.maintenance with the
// message, off removes it, a rollback's pin holds across both (the
// deployment is not rolled forward), and hostile messages are refused.
func TestMaintenance(t *testing.T) {
	e := newTestEnv(t, true)
	must(t, "", "apply", "-f", manifestDir(t))
	ctx := t.Context()
	o, err := e.store.Get(ctx, api.KindDeployment, "hello")
	if err != nil {
		t.Fatal(err)
	}
	d := o.(*api.Deployment)
	d.Default()
	spec := d.Spec
	const c1 = "a111111111111111111111111111111111111111"
	rs := any(e.store).(store.Rollouts)
	for _, ro := range []*api.Rollout{
		{ID: "hello-1-aaaa", Deployment: "hello", Revision: 1, Commit: c1, Generation: 1, Trigger: api.TriggerApply, State: api.RolloutSucceeded, Spec: &spec},
		{ID: "hello-2-bbbb", Deployment: "hello", Revision: 2, Commit: strings.Repeat("2", 40), Generation: 1, Trigger: api.TriggerApply, State: api.RolloutSucceeded, Spec: &spec},
	} {
		if err := rs.CreateRollout(ctx, ro); err != nil {
			t.Fatal(err)
		}
	}
	d.Status.Commit, d.Status.Revision, d.Status.ObservedGeneration = strings.Repeat("2", 40), 2, d.Metadata.Generation
	if _, err := e.store.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
	must(t, "", "rollout", "undo", "deployment/hello")

	current := func() *api.Deployment {
		o, err := e.store.Get(ctx, api.KindDeployment, "hello")
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.Deployment)
	}
	if out := must(t, "", "maintenance", "on", "deployment/hello", "--message", "Back at 10:00 UTC (sorry!)"); !strings.Contains(out, "maintenance on") {
		t.Errorf("on: %s", out)
	}
	d = current()
	if m := d.Spec.Ingress.Maintenance; m == nil || !m.Enabled || m.Message != "Back at 10:00 UTC (sorry!)" {
		t.Fatalf("maintenance after on: %+v", d.Spec.Ingress.Maintenance)
	}
	if p := d.Status.Pin; p == nil || p.Generation != d.Metadata.Generation || p.Commit != c1 {
		t.Fatalf("the rollback's pin did not follow the maintenance edit: %+v at generation %d", p, d.Metadata.Generation)
	}
	if out := must(t, "", "describe", "deployment", "hello"); !strings.Contains(out, `Maintenance:`) || !strings.Contains(out, `"Back at 10:00 UTC (sorry!)"`) {
		t.Errorf("describe does not show the maintenance mode:\n%s", out)
	}
	gen := d.Metadata.Generation
	must(t, "", "maintenance", "on", "deployment/hello", "--message", "Back at 10:00 UTC (sorry!)")
	if g := current().Metadata.Generation; g != gen {
		t.Errorf("the same mode again wrote generation %d (was %d)", g, gen)
	}
	must(t, "", "maintenance", "off", "hello")
	d = current()
	if d.Spec.Ingress.Maintenance != nil {
		t.Fatalf("maintenance after off: %+v", d.Spec.Ingress.Maintenance)
	}
	if p := d.Status.Pin; p == nil || p.Generation != d.Metadata.Generation {
		t.Fatalf("pin after off: %+v at generation %d", p, d.Metadata.Generation)
	}
	for _, args := range [][]string{
		{"maintenance", "on", "deployment/hello", "--message", `ok"; } server { return 200 "x`},
		{"maintenance", "on", "deployment/hello", "--message", "$host"},
		{"maintenance", "off", "deployment/hello", "--message", "x"},
		{"maintenance", "maybe", "deployment/hello"},
		{"maintenance", "on", "node/a"},
	} {
		if r := bakery(t, "", args...); r.code == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
}
