package node

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/sshexec"
)

func TestParseNodeObservation(t *testing.T) {
	out := "ready=bakery-ready\nkernel=Linux 6.1.0\nos=Debian GNU/Linux 12 (bookworm)\ntool=systemctl\ntool=git\n" +
		"bakery_bytes=4096\nfs_bytes=1000000\nfree_bytes=500000\nnoise line\n"
	got, err := ParseObservation(out)
	if err != nil {
		t.Fatal(err)
	}
	want := Observation{OS: "Debian GNU/Linux 12 (bookworm)", Kernel: "Linux 6.1.0", Tools: []string{"git", "systemctl"},
		Disk: &api.DiskUsage{BakeryBytes: 4096, FilesystemBytes: 1000000, FreeBytes: 500000}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if m := got.Missing([]string{"git", "nginx", "systemctl", "docker"}); !cmp.Equal(m, []string{"nginx", "docker"}) {
		t.Fatalf("missing = %v", m)
	}
	if _, err := ParseObservation("kernel=x\n"); err == nil {
		t.Fatal("output without bakery-ready accepted")
	}
}

// TestObserveLocal runs the real observe script on this machine through the
// local executor.
func TestObserveLocal(t *testing.T) {
	obs, err := Observe(t.Context(), sshexec.NewLocal(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Kernel == "" || obs.Disk == nil || obs.Disk.FilesystemBytes <= 0 || obs.Disk.FreeBytes <= 0 {
		t.Fatalf("incomplete observation: %+v", obs)
	}
	if len(obs.Missing([]string{"git"})) != 0 {
		t.Fatalf("git not found on the test machine: %+v", obs.Tools)
	}
}

func TestFingerprint(t *testing.T) {
	_, pub, err := sshexec.GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	fp := nodeconn.Fingerprint(pub)
	if len(fp) != len("SHA256:")+43 {
		t.Fatalf("fingerprint %q", fp)
	}
	if nodeconn.Fingerprint("garbage") != "" {
		t.Fatal("garbage key fingerprinted")
	}
}

func TestNodeReconcilerLocalNode(t *testing.T) {
	st := openStore(t)
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
