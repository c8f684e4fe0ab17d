package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/server"
)

type fakeCluster struct {
	l   *api.Leases
	err error
}

func (f fakeCluster) Leases(context.Context) (*api.Leases, error) { return f.l, f.err }

// GET /api/v1/leases: the server alone without a cluster; the cluster's
// answer with one; its failure as a 500.
func TestLeases(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.ServerID = "cp-1" })
	r := e.req("GET", "/api/v1/leases", "", "")
	want(t, r, http.StatusOK)
	var got api.Leases
	r.decode(t, &got)
	if diff := cmp.Diff(api.Leases{Server: "cp-1", Servers: []api.ControlPlane{{ID: "cp-1"}}, Leases: []api.Lease{}}, got); diff != "" {
		t.Fatalf("alone (-want +got):\n%s", diff)
	}

	in := &api.Leases{Server: "cp-1", Servers: []api.ControlPlane{{ID: "cp-1"}, {ID: "cp-2"}},
		Leases: []api.Lease{{Key: "Deployment/hello", Server: "cp-2"}}}
	e = newEnv(t, func(c *server.Config) { c.ServerID = "cp-1"; c.Cluster = fakeCluster{l: in} })
	r = e.req("GET", "/api/v1/leases", "", "")
	want(t, r, http.StatusOK)
	got = api.Leases{}
	r.decode(t, &got)
	if diff := cmp.Diff(*in, got); diff != "" {
		t.Fatalf("cluster (-want +got):\n%s", diff)
	}

	e = newEnv(t, func(c *server.Config) { c.Cluster = fakeCluster{err: errors.New("database down")} })
	want(t, e.req("GET", "/api/v1/leases", "", ""), http.StatusInternalServerError)
}
