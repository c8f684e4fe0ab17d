package node

import (
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/sshexec"
)

func TestNodeReconcilerLocalNode(t *testing.T) {
	st := testenv.FileStore(t)
	ctx := t.Context()
	n := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: "self"}, Spec: api.NodeSpec{Local: true}}
	n.Default()
	if _, err := st.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Store: st, Connector: nodeconn.SSHConnector{Local: sshexec.NewLocal()}, Resync: time.Minute}
	res, err := r.Reconcile(ctx, reconciler.Request{Kind: api.KindNode, Name: "self"})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter != time.Minute {
		t.Fatalf("healthy node requeued after %v, want the resync period", res.RequeueAfter)
	}
	got, _ := st.Get(ctx, api.KindNode, "self")
	s := got.(*api.Node).Status
	if !s.Reachable || s.LastHandshakeTime == nil || s.Disk == nil || s.Kernel == "" || s.ObservedGeneration != 1 {
		t.Fatalf("status not filled in: %+v", s)
	}
	if !api.IsTrue(s.Conditions, api.ConditionReachable) {
		t.Fatalf("conditions: %+v", s.Conditions)
	}
	// A node that is gone is not an error.
	if _, err := r.Reconcile(ctx, reconciler.Request{Kind: api.KindNode, Name: "gone"}); err != nil {
		t.Fatal(err)
	}
}
