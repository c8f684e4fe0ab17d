package node

import (
	"path/filepath"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/simnode"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/sshexec"
)

// A node observed with nothing changed writes no status until
// StatusRefresh has passed since its lastHandshakeTime; a visible change
// (the node becoming unreachable) is written at once.
func TestNodeStatusWrittenOnlyWhenChanged(t *testing.T) {
	ctx := t.Context()
	st := testenv.FileStore(t)
	id, err := nodeconn.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sshexec.ParsePrivateKey(id.PrivatePEM)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sshexec.NewPool(sshexec.Config{Signer: signer, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	sn, err := simnode.Start(id.AuthorizedKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sn.Close)
	n := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: "sim"}, Spec: api.NodeSpec{Address: "127.0.0.1", Port: sn.Port(), HostKey: sn.HostKey}}
	n.Default()
	if _, err := st.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	r := &Reconciler{Store: st, Connector: nodeconn.SSHConnector{Pool: pool}, Resync: time.Minute, StatusRefresh: 5 * time.Minute,
		CommandTimeout: 5 * time.Second, Now: func() time.Time { return now }}
	get := func() *api.Node {
		t.Helper()
		o, err := st.Get(ctx, api.KindNode, "sim")
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.Node)
	}
	observe := func() {
		t.Helper()
		if _, err := r.Reconcile(ctx, reconciler.Request{Kind: api.KindNode, Name: "sim"}); err != nil {
			t.Fatal(err)
		}
	}
	observe()
	first := get()
	if !first.Status.Reachable || first.Status.LastHandshakeTime == nil || !first.Status.LastHandshakeTime.Equal(now) {
		t.Fatalf("first observe: %+v", first.Status)
	}
	for range 4 {
		now = now.Add(time.Minute)
		observe()
		if rv := get().Metadata.ResourceVersion; rv != first.Metadata.ResourceVersion {
			t.Fatalf("at %s: status written again (resourceVersion %s → %s) with nothing changed", now, first.Metadata.ResourceVersion, rv)
		}
	}
	now = now.Add(time.Minute) // 5 minutes since the handshake recorded
	observe()
	refreshed := get()
	if refreshed.Metadata.ResourceVersion == first.Metadata.ResourceVersion || !refreshed.Status.LastHandshakeTime.Equal(now) {
		t.Fatalf("after StatusRefresh: lastHandshakeTime %v, want %v (written)", refreshed.Status.LastHandshakeTime, now)
	}

	// A visible change is written at once.
	sn.Close()
	now = now.Add(time.Second)
	if _, err := r.Reconcile(ctx, reconciler.Request{Kind: api.KindNode, Name: "sim"}); err == nil {
		t.Fatal("observing a closed node succeeded")
	}
	if down := get(); down.Status.Reachable || api.IsTrue(down.Status.Conditions, api.ConditionReachable) {
		t.Fatalf("unreachable node not written: %+v", down.Status)
	}
}

// What a node's new status may differ by and still not be written: the
// handshake time and the disk's byte counts, within StatusRefresh and on
// the same side of the DiskLow threshold.
func TestNodeStatusUnchanged(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	base := func() *api.Node {
		n := &api.Node{Metadata: api.ObjectMeta{Name: "n", Generation: 1}}
		n.Status = api.NodeStatus{ObservedGeneration: 1, Reachable: true, LastHandshakeTime: api.NewTime(t0), OS: "Debian",
			Disk: &api.DiskUsage{BakeryBytes: 100, FilesystemBytes: 1000, FreeBytes: 500}}
		api.SetCondition(&n.Status.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: ReasonNodeReady})
		return n
	}
	r := &Reconciler{StatusRefresh: 5 * time.Minute}
	for _, tc := range []struct {
		name   string
		change func(n *api.Node)
		want   bool
	}{
		{"handshake a minute later", func(n *api.Node) { n.Status.LastHandshakeTime = api.NewTime(t0.Add(time.Minute)) }, true},
		{"disk bytes changed", func(n *api.Node) {
			n.Status.Disk = &api.DiskUsage{BakeryBytes: 150, FilesystemBytes: 1000, FreeBytes: 450}
		}, true},
		{"handshake after StatusRefresh", func(n *api.Node) { n.Status.LastHandshakeTime = api.NewTime(t0.Add(5 * time.Minute)) }, false},
		{"disk below DiskLow", func(n *api.Node) {
			n.Status.Disk = &api.DiskUsage{BakeryBytes: 150, FilesystemBytes: 1000, FreeBytes: 50}
		}, false},
		{"OS changed", func(n *api.Node) { n.Status.OS = "Ubuntu" }, false},
		{"condition changed", func(n *api.Node) {
			api.SetCondition(&n.Status.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: ReasonMissingTools})
		}, false},
	} {
		stored := base()
		n := base()
		tc.change(n)
		got := r.unchanged(n, storedStatus{json: stored.StatusJSON(), handshake: stored.Status.LastHandshakeTime, disk: stored.Status.Disk})
		if got != tc.want {
			t.Errorf("%s: unchanged %v, want %v", tc.name, got, tc.want)
		}
		if n.Status.LastHandshakeTime == stored.Status.LastHandshakeTime && tc.name == "handshake a minute later" {
			t.Errorf("%s: unchanged replaced the new status's handshake time", tc.name)
		}
	}
}
