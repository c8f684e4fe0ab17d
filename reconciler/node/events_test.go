package node

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/internal/events/eventstest"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/sshexec"
)

func TestDiskLow(t *testing.T) {
	for _, tc := range []struct {
		d    *api.DiskUsage
		pct  float64
		want bool
	}{
		{nil, 10, false},
		{&api.DiskUsage{FilesystemBytes: 0, FreeBytes: 0}, 10, false},
		{&api.DiskUsage{FilesystemBytes: 1000, FreeBytes: 99}, 10, true},
		{&api.DiskUsage{FilesystemBytes: 1000, FreeBytes: 100}, 10, false},
		{&api.DiskUsage{FilesystemBytes: 1000, FreeBytes: 1}, -1, false},
	} {
		if got := diskLow(tc.d, tc.pct); got != tc.want {
			t.Errorf("diskLow(%+v, %g) = %v", tc.d, tc.pct, got)
		}
	}
}

// TestNodeEvents drives the node reconciler through Reachable and disk
// transitions: events are raised on transitions only, not on every retry.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		d    *api.DiskUsage
		want bool
	}{
		{nil, false},
		{&api.DiskUsage{}, false}, // unknown
		{&api.DiskUsage{FilesystemBytes: 16 << 20, FreeBytes: 0}, true},
		{&api.DiskUsage{FilesystemBytes: 16 << 20, FreeBytes: 512 << 10}, true},
		{&api.DiskUsage{FilesystemBytes: 16 << 20, FreeBytes: 2 << 20}, false},
	} {
		if got := diskFull(tc.d); got != tc.want {
			t.Errorf("diskFull(%+v) = %v, want %v", tc.d, got, tc.want)
		}
	}
}

func TestNodeEvents(t *testing.T) {
	ctx := t.Context()
	l := eventstest.New(t, nil)
	node := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: "here"}, Spec: api.NodeSpec{Local: true}}
	node.Default()
	if _, err := l.St.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	// Pre-set: unreachable before, with plenty of free space.
	o, _ := l.St.Get(ctx, api.KindNode, "here")
	n := o.(*api.Node)
	n.Status.Reachable = false
	n.Status.Disk = &api.DiskUsage{FilesystemBytes: 1000, FreeBytes: 1000}
	api.SetCondition(&n.Status.Conditions, api.Condition{Type: api.ConditionReachable, Status: api.ConditionFalse, Reason: ReasonUnreachable})
	if _, err := l.St.UpdateStatus(ctx, n); err != nil {
		t.Fatal(err)
	}

	priv, _, err := sshexec.GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sshexec.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sshexec.NewPool(sshexec.Config{Signer: signer, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	// Every filesystem has less than 100% free: DiskLow once observed.
	r := &Reconciler{Store: l.St, Connector: nodeconn.SSHConnector{Pool: pool, Local: sshexec.NewLocal()}, DiskLowPercent: 100,
		Logger: slog.New(slog.DiscardHandler), Events: l.Rec}

	if _, err := r.reconcile(ctx, "here", false); err != nil {
		t.Fatal(err)
	}
	eventstest.Expect(t, l, "NodeRecovered Node/here", "DiskLow Node/here")
	if e := l.Last(); e.Severity != api.SeverityWarning || !strings.Contains(e.Message, "below 100%") {
		t.Fatalf("DiskLow event %+v", e)
	}
	if _, err := r.reconcile(ctx, "here", false); err != nil {
		t.Fatal(err)
	}
	eventstest.Expect(t, l, "NodeRecovered Node/here", "DiskLow Node/here")

	// Unreachable: point it at a closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	setSpec := func(local bool) {
		t.Helper()
		o, _ := l.St.Get(ctx, api.KindNode, "here")
		n := o.(*api.Node)
		n.Spec.Local = local
		n.Spec.Address, n.Spec.Port = "", 0
		if !local {
			n.Spec.Address, n.Spec.Port, n.Spec.User = "127.0.0.1", port, "bakery"
		}
		if _, err := l.St.Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	setSpec(false)
	for range 2 { // the retry raises nothing new
		if _, err := r.reconcile(ctx, "here", false); err == nil {
			t.Fatal("closed port reached")
		}
	}
	eventstest.Expect(t, l, "NodeRecovered Node/here", "DiskLow Node/here", "NodeUnreachable Node/here")
	if e := l.Last(); e.Severity != api.SeverityError || e.Message == "" {
		t.Fatalf("NodeUnreachable event %+v", e)
	}

	// Back: recovered, and the disk, low all along, raises nothing.
	setSpec(true)
	for range 2 {
		if _, err := r.reconcile(ctx, "here", false); err != nil {
			t.Fatal(err)
		}
	}
	eventstest.Expect(t, l, "NodeRecovered Node/here", "DiskLow Node/here", "NodeUnreachable Node/here", "NodeRecovered Node/here")
}
