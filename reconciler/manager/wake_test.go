package manager

import (
	"testing"

	"bakery.dev/bakery/api"
)

// A Node wakes its deployments when it becomes Ready or its spec or
// labels change, not on its status writes; a deployment is placed on a
// node by spec.nodes, by its selector, or by its status (it ran there).
func TestNodeWakeUps(t *testing.T) {
	node := func(gen int64, ready bool, labels map[string]string) *api.Node {
		n := &api.Node{Metadata: api.ObjectMeta{Name: "web-2", Generation: gen, Labels: labels}}
		st := api.ConditionFalse
		if ready {
			st = api.ConditionTrue
		}
		api.SetCondition(&n.Status.Conditions, api.Condition{Type: api.ConditionReady, Status: st})
		return n
	}
	web := map[string]string{"role": "web"}
	down, up := wakeOf(node(1, false, web)), wakeOf(node(1, true, web))
	for _, tc := range []struct {
		name      string
		prev      nodeWake
		known     bool
		cur       nodeWake
		wantWakes bool
	}{
		{"became Ready", down, true, up, true},
		{"first seen Ready", nodeWake{}, false, up, true},
		{"first seen not Ready", nodeWake{}, false, down, false},
		{"stays Ready (a status write)", up, true, up, false},
		{"went down", up, true, down, false},
		{"spec changed", up, true, wakeOf(node(2, true, web)), true},
		{"labels changed", up, true, wakeOf(node(1, true, map[string]string{"role": "db"})), true},
	} {
		if got := wakeReason(tc.prev, tc.known, tc.cur) != ""; got != tc.wantWakes {
			t.Errorf("%s: wakes %v, want %v", tc.name, got, tc.wantWakes)
		}
	}

	n := node(1, true, web)
	byName := helloDeploymentFor("by-name", "r")
	byName.Spec.Nodes = []string{"web-1", "web-2"}
	bySel := helloDeploymentFor("by-selector", "r")
	bySel.Spec.Nodes, bySel.Spec.NodeSelector = nil, map[string]string{"role": "web"}
	ranThere := helloDeploymentFor("ran-there", "r")
	ranThere.Status.Nodes = []api.NodeAppStatus{{Node: "web-2"}}
	elsewhere := helloDeploymentFor("elsewhere", "r")
	otherSel := helloDeploymentFor("other-selector", "r")
	otherSel.Spec.Nodes, otherSel.Spec.NodeSelector = nil, map[string]string{"role": "db"}
	for _, tc := range []struct {
		d    *api.Deployment
		want bool
	}{{byName, true}, {bySel, true}, {ranThere, true}, {elsewhere, false}, {otherSel, false}} {
		if got := placedOn(tc.d, n); got != tc.want {
			t.Errorf("%s placed on web-2: %v, want %v", tc.d.Metadata.Name, got, tc.want)
		}
	}
}
