package main

import (
	"testing"

	"bakery.dev/bakery/api"
)

// READY counts the nodes that serve the deployment's revision and are
// healthy: a node still on the old revision, or one that could not be
// observed, is not ready (issue 17: 1/3, not 3/3, while a node was down
// mid-rollout).
func TestReadyCount(t *testing.T) {
	const old, cur = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	d := &api.Deployment{Spec: api.DeploymentSpec{Nodes: []string{"n1", "n2", "n3"}}}
	d.Status.Commit, d.Status.Revision = cur, 2
	for _, tc := range []struct {
		name  string
		nodes []api.NodeAppStatus
		want  string
	}{
		{"no status yet", nil, "0/3"},
		{"mixed, one down", []api.NodeAppStatus{
			{Node: "n1", Commit: cur, Revision: 2, Healthy: true},
			{Node: "n2", Commit: old, Revision: 1, Message: "unreachable: connection refused"},
			{Node: "n3", Commit: old, Revision: 1, Healthy: true},
		}, "1/3"},
		{"converged", []api.NodeAppStatus{
			{Node: "n1", Commit: cur, Revision: 2, Healthy: true},
			{Node: "n2", Commit: cur, Revision: 2, Healthy: true},
			{Node: "n3", Commit: cur, Revision: 2, Healthy: true},
		}, "3/3"},
		{"same commit, older spec revision", []api.NodeAppStatus{
			{Node: "n1", Commit: cur, Revision: 1, Healthy: true},
		}, "0/1"},
		{"no revision recorded: by commit", []api.NodeAppStatus{
			{Node: "n1", Commit: cur, Healthy: true}, {Node: "n2", Commit: cur},
		}, "1/2"},
	} {
		d.Status.Nodes = tc.nodes
		if got := readyCount(d); got != tc.want {
			t.Errorf("%s: READY %s, want %s", tc.name, got, tc.want)
		}
	}
}
