package analytics

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/sshexec"
)

// TestAnalyticsLocal runs the collection script for real (a local node)
// against an access log in a temporary directory: exact counts, status
// classes and bytes; nothing counted twice by later cycles or a new
// collector (a restarted control plane); partial lines wait; a rotated
// log is finished from its .1 file; a bounded read catches up over
// cycles.
func TestAnalyticsLocal(t *testing.T) {
	ctx := t.Context()
	st, err := filestore.Open(t.TempDir(), filestore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode}, Metadata: api.ObjectMeta{Name: "n1"}, Spec: api.NodeSpec{Local: true}}
	if _, err := st.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	d := helloDeploymentForTest()
	d.Status.Nodes = []api.NodeAppStatus{{Node: "n1"}}
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "web", "releases"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "web", "releases", "x"), make([]byte, 1000), 0o644)
	logf := filepath.Join(dir, "bakery-web.access")
	now := time.Now()
	line := func(status, bytes int, secs float64) string {
		return fmt.Sprintf("%.3f|%d|%d|%.3f\n", float64(now.UnixMilli())/1000, status, bytes, secs)
	}
	appendLog := func(file, s string) {
		f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	newCollector := func() *Collector {
		return &Collector{Store: st, Settings: st, Connector: nodeconn.SSHConnector{Local: sshexec.NewLocal()}, LogDir: dir, AppsDir: dir}
	}
	a := newCollector()
	total := func() api.TrafficSummary {
		t.Helper()
		m, err := store.LoadMetrics(ctx, st, "web")
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Nodes) != 1 {
			return api.TrafficSummary{}
		}
		return api.Summarize(m.Nodes[0].Points, time.Time{})
	}
	collect := func(a *Collector) {
		t.Helper()
		s, err := a.Collect(ctx)
		if err != nil || s.Nodes["n1"].Err != nil {
			t.Fatalf("collect: %v %+v", err, s)
		}
	}
	want := func(what string, n int64, status [5]int64, bytes int64) {
		t.Helper()
		s := total()
		if s.Requests != n || s.Status != status || s.Bytes != bytes {
			t.Fatalf("%s: %d requests %v %d bytes, want %d %v %d", what, s.Requests, s.Status, s.Bytes, n, status, bytes)
		}
	}

	collect(a) // no log yet
	want("no log", 0, [5]int64{}, 0)
	appendLog(logf, line(200, 10, 0.004)+line(200, 10, 0.004)+line(200, 10, 0.040)+line(404, 5, 0.001)+line(503, 0, 1.5))
	collect(a)
	want("first read", 5, [5]int64{0, 3, 0, 1, 1}, 35)
	if s := total(); s.P50 != 5 || s.P99 != 2000 {
		t.Errorf("percentiles p50 %v p99 %v, want 5 and 2000", s.P50, s.P99)
	}
	collect(a)
	collect(newCollector()) // a restarted control plane
	want("again and after a restart", 5, [5]int64{0, 3, 0, 1, 1}, 35)

	// A partial line waits for its end.
	full := line(301, 7, 0.002)
	appendLog(logf, full[:9])
	collect(a)
	want("partial line", 5, [5]int64{0, 3, 0, 1, 1}, 35)
	appendLog(logf, full[9:]+line(200, 1, 0.001))
	collect(a)
	want("completed line", 7, [5]int64{0, 4, 1, 1, 1}, 43)

	// Rotation: lines written before the move are read from .1.
	appendLog(logf, line(200, 100, 0.001)+line(200, 100, 0.001))
	if err := os.Rename(logf, logf+".1"); err != nil {
		t.Fatal(err)
	}
	appendLog(logf, line(500, 1, 0.001))
	collect(a)
	want("rotated", 10, [5]int64{0, 6, 1, 1, 2}, 244)
	collect(newCollector())
	want("rotated, again", 10, [5]int64{0, 6, 1, 1, 2}, 244)

	// A bounded read catches up over several cycles.
	small := newCollector()
	small.MaxBytes = 64
	var many strings.Builder
	for range 20 {
		many.WriteString(line(200, 1, 0.001))
	}
	appendLog(logf, many.String())
	for range 20 {
		collect(small)
	}
	want("bounded reads", 30, [5]int64{0, 26, 1, 1, 2}, 264)

	m, _ := store.LoadMetrics(ctx, st, "web")
	if dk := m.Nodes[0].Disk; dk == nil || dk.Releases < 1000 || dk.AccessLog == 0 {
		t.Errorf("disk: %+v", m.Nodes[0].Disk)
	}
	var _ store.Settings = st
}

func helloDeploymentForTest() *api.Deployment {
	d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment}, Metadata: api.ObjectMeta{Name: "web"},
		Spec: api.DeploymentSpec{Source: api.Source{Repo: "/srv/x.git"}, Nodes: []string{"n1"}, Run: api.Run{Command: "x"}}}
	d.Default()
	return d
}
