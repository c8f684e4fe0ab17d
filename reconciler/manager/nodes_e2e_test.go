//go:build e2e

package manager

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/internal/controller"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/node"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/scripts/testnodes"
	"bakery.dev/bakery/sshexec"
)

// labPool returns an SSH pool holding the lab's control-plane key.
func labPool(t *testing.T, lab *testnodes.Lab) *sshexec.Pool {
	t.Helper()
	pem, err := os.ReadFile(lab.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sshexec.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sshexec.NewPool(sshexec.Config{Signer: signer, DialTimeout: 3 * time.Second, HandshakeTimeout: 5 * time.Second, KeepaliveInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

func labNode(name, addr string) *api.Node {
	n := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: name}, Spec: api.NodeSpec{Address: addr}}
	n.Default()
	return n
}

// countingConnector records every command sent to each node.
type countingConnector struct {
	nodeconn.Connector
	runs map[string]*atomic.Int64
}

type countingExecutor struct {
	sshexec.Executor
	n *atomic.Int64
}

func (e countingExecutor) Run(ctx context.Context, c sshexec.Command) (sshexec.Result, error) {
	e.n.Add(1)
	return e.Executor.Run(ctx, c)
}

func (c countingConnector) Executor(node, via *api.Node) sshexec.Executor {
	return countingExecutor{c.Connector.Executor(node, via), c.runs[node.Metadata.Name]}
}

func getNode(t *testing.T, st store.Store, name string) *api.Node {
	t.Helper()
	o, err := st.Get(t.Context(), api.KindNode, name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.Node)
}

func condition(n *api.Node, typ string) (api.ConditionStatus, string) {
	c := api.FindCondition(n.Status.Conditions, typ)
	if c == nil {
		return "", ""
	}
	return c.Status, c.Reason
}

func waitNode(t *testing.T, st store.Store, name, what string, cond func(n *api.Node) bool) *api.Node {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		n := getNode(t, st, name)
		if cond(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: timed out waiting until %s; status %+v", name, what, n.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestE2ENodesBecomeReady(t *testing.T) {
	lab := testnodes.Require(t)
	st := testenv.FileStore(t)
	pool := labPool(t, lab)
	start := time.Now()
	for _, n := range lab.Nodes {
		if _, err := st.Create(t.Context(), labNode(n.Name, n.Address)); err != nil {
			t.Fatal(err)
		}
	}
	rec := &node.Reconciler{Store: st, Connector: nodeconn.SSHConnector{Pool: pool}, Resync: 200 * time.Millisecond}
	runController(t, st, rec, controller.Options{Resync: 200 * time.Millisecond, BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	for _, n := range lab.Nodes {
		got := waitNode(t, st, n.Name, "Ready", func(x *api.Node) bool { return api.IsTrue(x.Status.Conditions, api.ConditionReady) })
		s := got.Status
		if s.Disk == nil || s.Disk.FilesystemBytes == 0 || len(s.Tools) == 0 || s.OS == "" || s.LastHandshakeTime == nil {
			t.Errorf("%s: status incomplete: %+v", n.Name, s)
		}
		// Trust on first use pinned exactly the key the lab generated.
		if s.HostKey == "" || nodeconn.Fingerprint(s.HostKey) != nodeconn.Fingerprint(n.HostKey) {
			t.Errorf("%s: pinned host key %q, want the node's %q", n.Name, s.HostKey, n.HostKey)
		}
	}
	t.Logf("%d nodes Ready %v after creation", len(lab.Nodes), time.Since(start))

	// One observe cycle over all nodes, measured (the first dials — the
	// pinned key makes a new pool target —, the second is warm).
	for cycle := range 2 {
		t0 := time.Now()
		for _, n := range lab.Nodes {
			if _, err := nodescript.ObserveNodeOn(t.Context(), nodeconn.SSHConnector{Pool: pool}.Executor(getNode(t, st, n.Name), nil), 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("observe cycle %d over %d nodes, one after another: %v", cycle+1, len(lab.Nodes), time.Since(t0))
	}
}

func TestE2ENodePowerOffAndBack(t *testing.T) {
	lab := testnodes.Require(t)
	scratch := testnodes.Scratch(t)
	st := testenv.FileStore(t)
	pool := labPool(t, lab)
	if _, err := st.Create(t.Context(), labNode(scratch.Name, scratch.Address)); err != nil {
		t.Fatal(err)
	}
	rec := &node.Reconciler{Store: st, Connector: nodeconn.SSHConnector{Pool: pool}, Resync: 200 * time.Millisecond, CommandTimeout: 3 * time.Second}
	runController(t, st, rec, controller.Options{Resync: 200 * time.Millisecond, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	ready := func(x *api.Node) bool { return api.IsTrue(x.Status.Conditions, api.ConditionReady) }
	waitNode(t, st, scratch.Name, "Ready", ready)

	testnodes.Stop(t, scratch.Name)
	down := waitNode(t, st, scratch.Name, "Reachable=False", func(x *api.Node) bool {
		s, _ := condition(x, api.ConditionReachable)
		return s == api.ConditionFalse
	})
	if down.Status.LastError == "" || down.Status.Reachable {
		t.Fatalf("unreachable node must record the error: %+v", down.Status)
	}
	_, reason := condition(down, api.ConditionReachable)
	t.Logf("powered off: Reachable=False reason %s: %s", reason, down.Status.LastError)

	testnodes.Start(t, scratch.Name)
	waitNode(t, st, scratch.Name, "Ready again", ready)
}

func TestE2EHostKeyMismatchStalls(t *testing.T) {
	lab := testnodes.Require(t)
	scratch := testnodes.Scratch(t)
	st := testenv.FileStore(t)
	pool := labPool(t, lab)
	if _, err := st.Create(t.Context(), labNode(scratch.Name, scratch.Address)); err != nil {
		t.Fatal(err)
	}
	runs := &atomic.Int64{}
	conn := countingConnector{Connector: nodeconn.SSHConnector{Pool: pool}, runs: map[string]*atomic.Int64{scratch.Name: runs}}
	rec := &node.Reconciler{Store: st, Connector: conn, Resync: 100 * time.Millisecond, CommandTimeout: 3 * time.Second}
	runController(t, st, rec, controller.Options{Resync: 100 * time.Millisecond, BaseBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	waitNode(t, st, scratch.Name, "Ready", func(x *api.Node) bool { return api.IsTrue(x.Status.Conditions, api.ConditionReady) })

	testnodes.RotateHostKey(t, scratch.Name)
	// The pool keeps the old connection until it breaks: drop it so the
	// next command dials and sees the new key.
	pool.Forget(nodeconn.Target(getNode(t, st, scratch.Name), nil))
	stalled := waitNode(t, st, scratch.Name, "Stalled", func(x *api.Node) bool { return api.IsTrue(x.Status.Conditions, api.ConditionStalled) })
	if _, reason := condition(stalled, api.ConditionStalled); reason != node.ReasonHostKeyMismatch {
		t.Fatalf("stalled with reason %q, want %s", reason, node.ReasonHostKeyMismatch)
	}
	// No further command goes to the node: across several resync periods
	// the count does not move.
	before := runs.Load()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if runs.Load() != before {
			t.Fatalf("commands sent to a stalled node: %d → %d", before, runs.Load())
		}
	}
}
