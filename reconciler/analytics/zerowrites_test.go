package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/sshexec"
)

// countingSettings counts the settings written.
type countingSettings struct {
	store.Settings
	puts int
}

func (c *countingSettings) PutSetting(ctx context.Context, name string, v []byte) error {
	c.puts++
	return c.Settings.PutSetting(ctx, name, v)
}

// A collection that finds nothing new (an idle app) writes no metrics
// record; new lines are written at once; Collected is refreshed every
// CollectedRefresh.
func TestAnalyticsIdleWritesNothing(t *testing.T) {
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
	logf := filepath.Join(dir, "bakery-web.access")
	line := fmt.Sprintf("%.3f|200|10|0.004\n", float64(time.Now().UnixMilli())/1000)
	if err := os.WriteFile(logf, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := &countingSettings{Settings: st}
	a := &Collector{Store: st, Settings: cs, Connector: nodeconn.SSHConnector{Local: sshexec.NewLocal()}, LogDir: dir, AppsDir: dir,
		CollectedRefresh: time.Hour}
	collect := func() int {
		t.Helper()
		cs.puts = 0
		s, err := a.Collect(ctx)
		if err != nil || s.Nodes["n1"].Err != nil {
			t.Fatalf("collect: %v %+v", err, s)
		}
		return cs.puts
	}
	if got := collect(); got != 1 {
		t.Fatalf("first collection wrote %d records, want 1", got)
	}
	for i := range 3 {
		if got := collect(); got != 0 {
			t.Fatalf("idle collection %d wrote %d records, want 0", i+1, got)
		}
	}
	f, err := os.OpenFile(logf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(line)
	f.Close()
	if got := collect(); got != 1 {
		t.Fatalf("a collection with a new line wrote %d records, want 1", got)
	}
	a.CollectedRefresh = time.Nanosecond
	if got := collect(); got != 1 {
		t.Fatalf("an idle collection after CollectedRefresh wrote %d records, want 1 (refresh)", got)
	}
}
