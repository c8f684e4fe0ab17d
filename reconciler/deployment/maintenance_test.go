package deployment

import (
	"testing"

	"bakery.dev/bakery/api"
)

// A rollback restores a revision's ingress but keeps the maintenance mode
// as it is now: it is no part of a revision.
func TestRestoredSpecKeepsMaintenance(t *testing.T) {
	on := &api.Maintenance{Enabled: true, Message: "m"}
	rec := api.DeploymentSpec{Ingress: &api.Ingress{Hosts: []string{"old.test"}, Maintenance: &api.Maintenance{Enabled: true, Message: "old"}}}
	for _, c := range []struct {
		name     string
		cur, rec api.DeploymentSpec
		want     *api.Maintenance
		nilIng   bool
	}{
		{"on now, revision without", api.DeploymentSpec{Ingress: &api.Ingress{Maintenance: on}}, api.DeploymentSpec{Ingress: &api.Ingress{Hosts: []string{"a.test"}}}, on, false},
		{"off now, revision with", api.DeploymentSpec{Ingress: &api.Ingress{}}, rec, nil, false},
		{"on now, revision without ingress", api.DeploymentSpec{Ingress: &api.Ingress{Maintenance: on}}, api.DeploymentSpec{}, on, false},
		{"no ingress either", api.DeploymentSpec{}, api.DeploymentSpec{}, nil, true},
	} {
		got := restoredSpec(c.cur, c.rec)
		if c.nilIng {
			if got.Ingress != nil {
				t.Errorf("%s: ingress %+v", c.name, got.Ingress)
			}
			continue
		}
		if got.Ingress == nil || got.Ingress.Maintenance != c.want {
			t.Errorf("%s: %+v", c.name, got.Ingress)
		}
		if c.rec.Ingress != nil && got.Ingress.Hosts[0] != c.rec.Ingress.Hosts[0] {
			t.Errorf("%s: hosts %v", c.name, got.Ingress.Hosts)
		}
	}
	if rec.Ingress.Maintenance.Message != "old" {
		t.Error("restoredSpec changed the recorded spec")
	}
}
