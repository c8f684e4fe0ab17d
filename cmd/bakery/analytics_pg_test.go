package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/reconciler/analytics"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/sshexec"
)

// TestAnalyticsRecord keeps the control plane's traffic metrics in
// PostgreSQL: counts and the log position survive a new collector (a
// restarted control plane) without counting twice. (The file store runs
// the same in reconciler's TestAnalyticsLocal.)
func TestAnalyticsRecord(t *testing.T) {
	ctx := t.Context()
	st, err := pgstore.Open(ctx, pgtest.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode}, Metadata: api.ObjectMeta{Name: "n1"}, Spec: api.NodeSpec{Local: true}}
	if _, err := st.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment}, Metadata: api.ObjectMeta{Name: "web"},
		Spec:   api.DeploymentSpec{Source: api.Source{Repo: "/srv/x.git"}, Nodes: []string{"n1"}, Run: api.Run{Command: "x"}},
		Status: api.DeploymentStatus{Nodes: []api.NodeAppStatus{{Node: "n1"}}}}
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var lines string
	for i := range 12 {
		lines += fmt.Sprintf("%.3f|%d|10|0.003\n", float64(time.Now().UnixMilli())/1000, []int{200, 302, 404, 500}[i%4])
	}
	if err := os.WriteFile(filepath.Join(dir, "bakery-web.access"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	collect := func() api.TrafficSummary {
		t.Helper()
		a := &analytics.Collector{Store: st, Settings: st, Connector: nodeconn.SSHConnector{Local: sshexec.NewLocal()}, LogDir: dir, AppsDir: dir}
		if s, err := a.Collect(ctx); err != nil || s.Nodes["n1"].Err != nil {
			t.Fatalf("collect: %v %+v", err, s)
		}
		m, err := store.LoadMetrics(ctx, st, "web")
		if err != nil || len(m.Nodes) != 1 {
			t.Fatalf("metrics: %+v %v", m, err)
		}
		return api.Summarize(m.Nodes[0].Points, time.Time{})
	}
	for i := range 3 {
		if s := collect(); s.Requests != 12 || s.Status != [5]int64{0, 3, 3, 3, 3} || s.Bytes != 120 {
			t.Fatalf("collection %d: %+v", i+1, s)
		}
	}
}
