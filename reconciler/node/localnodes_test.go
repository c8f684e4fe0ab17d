package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/sshexec"
)

// TestLocalNodeWithoutFlag: on a server without --allow-local-nodes (the
// connector has no local executor) a local node already in the store runs
// nothing on this host and stalls with a reason naming the flag — defence
// in depth behind the writers' refusal — and a restart with the flag picks
// it up without a spec change.
func TestLocalNodeWithoutFlag(t *testing.T) {
	st := testenv.FileStore(t)
	ctx := t.Context()
	n := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: "self"}, Spec: api.NodeSpec{Local: true}}
	n.Default()
	if _, err := st.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Store: st, Connector: nodeconn.SSHConnector{}, Resync: time.Minute}
	_, err := r.Reconcile(ctx, reconciler.Request{Kind: api.KindNode, Name: "self"})
	if !errors.Is(err, nodeconn.ErrLocalNodesDisabled) || !reconciler.IsTerminal(err) {
		t.Fatalf("reconcile: %v, want a terminal ErrLocalNodesDisabled", err)
	}
	got, _ := st.Get(ctx, api.KindNode, "self")
	s := got.(*api.Node).Status
	c := api.FindCondition(s.Conditions, api.ConditionStalled)
	if c == nil || c.Status != api.ConditionTrue || c.Reason != ReasonLocalNodesDisabled || !strings.Contains(c.Message, "--allow-local-nodes") || s.Reachable {
		t.Fatalf("status: %+v", s)
	}
	// Restarted with the flag: observed, no longer stalled.
	r.Connector = nodeconn.SSHConnector{Local: sshexec.NewLocal()}
	if _, err := r.Reconcile(ctx, reconciler.Request{Kind: api.KindNode, Name: "self"}); err != nil {
		t.Fatal(err)
	}
	got, _ = st.Get(ctx, api.KindNode, "self")
	if s := got.(*api.Node).Status; !s.Reachable || api.IsTrue(s.Conditions, api.ConditionStalled) {
		t.Fatalf("with the flag: %+v", s)
	}
}
