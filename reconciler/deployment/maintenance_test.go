package deployment

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
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

// The site's parameters come from spec.ingress: proxy settings, headers in
// name order, redirects, HSTS only with TLS, and maintenance with the
// default message; websockets and buffering stay on unless set false.
func TestSiteFromSpec(t *testing.T) {
	on, off := true, false
	spec := &api.DeploymentSpec{Ingress: &api.Ingress{Hosts: []string{"a.test"},
		TLS: &api.TLS{Email: "a@b.test", HSTS: true},
		Proxy: &api.Proxy{WebSockets: &off, Buffering: &off, ClientMaxBodySize: "20m",
			ReadTimeout: &api.Duration{Duration: time.Hour}, SendTimeout: &api.Duration{Duration: 30 * time.Second},
			Headers: map[string]string{"X-B": "2", "X-A": "1"}},
		Redirects:   []api.Redirect{{From: "www.a.test", To: "a.test"}},
		Maintenance: &api.Maintenance{Enabled: true}}}
	s := nginxIngress{}.site(&nodeRun{app: "web", spec: spec}, "blue", 20000, true)
	want := nf.Site{App: "web", Slot: "blue", Port: 20000, Hosts: []string{"a.test"}, TLS: true, CertHosts: []string{"a.test"}, HSTS: true,
		NoWebSockets: true, NoBuffering: true, BodySize: "20m", ReadTimeout: 3600, SendTimeout: 30,
		Headers: []nf.Header{{Name: "X-A", Value: "1"}, {Name: "X-B", Value: "2"}}, Redirects: spec.Ingress.Redirects,
		Maintenance: api.DefaultMaintenanceMessage}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Fatalf("site (-want +got):\n%s", diff)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	spec.Ingress.Proxy = &api.Proxy{WebSockets: &on}
	spec.Ingress.Maintenance = &api.Maintenance{Enabled: false, Message: "x"}
	spec.Ingress.TLS = nil
	s = nginxIngress{}.site(&nodeRun{app: "web", spec: spec}, "blue", 20000, true)
	if s.NoWebSockets || s.NoBuffering || s.Maintenance != "" || s.HSTS {
		t.Fatalf("defaults: %+v", s)
	}
}
