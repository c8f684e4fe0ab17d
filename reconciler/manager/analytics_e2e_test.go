//go:build e2e

package manager

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/analytics"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/scripts/testnodes"
)

// TestE2EAnalytics deploys the example app, sends N requests through the
// node's nginx (some refused by nginx with 413), and collects: the stored
// counts grow by exactly N with the right classes; a new collector (a
// restarted control plane) counts nothing twice and then counts new
// requests exactly. It logs the collection cost per node and cycle.
func TestE2EAnalytics(t *testing.T) {
	lab := testnodes.Require(t)
	node := testnodes.RequireNodes(t, 1)[0]
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	repo, commit := exampleRepo(t)
	c1 := commit("v1", map[string]string{"CHANGES": "v1\n"})
	nn := labNode(node.Name, node.Address)
	nn.Spec.HostKey = node.HostKey
	if _, err := st.Create(ctx, nn); err != nil {
		t.Fatal(err)
	}
	const app = "stats"
	const h = "/usr/local/lib/bakery/bakery-sudo"
	cleanup := `for s in blue green; do sudo -n ` + h + ` systemctl disable stats $s; sudo -n ` + h + ` systemctl stop stats $s; sudo -n ` + h + ` unit-remove stats $s; sudo -n ` + h + ` env-remove stats $s; done
sudo -n ` + h + ` nginx-site-remove stats; rm -rf /var/lib/bakery/apps/stats; sudo -n ` + h + ` daemon-reload; sudo -n ` + h + ` nginx-reload`
	testnodes.SSH(t, node, cleanup)
	testnodes.Exec(t, node.Name, "rm -f /var/log/nginx/bakery-stats.access*")
	t.Cleanup(func() { testnodes.SSH(t, node, cleanup) })

	key := labKey(t, lab)
	runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: time.Minute, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute, AnalyticsInterval: -1})

	d := helloDeployment(repo, node.Name)
	d.Metadata.Name = app
	d.Spec.Ingress.Hosts = []string{"stats.example.test"}
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		o, _ := st.Get(ctx, api.KindDeployment, app)
		dd := o.(*api.Deployment)
		if c := api.FindCondition(dd.Status.Conditions, api.ConditionReady); dd.Status.Commit == c1 && c != nil && c.Status == api.ConditionTrue {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not Ready: %+v", dd.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}

	collector := func() *analytics.Collector {
		return &analytics.Collector{Store: st, Settings: st.(settingsStore), Connector: nodeconn.SSHConnector{Pool: labPool(t, lab)}}
	}
	a := collector()
	total := func() api.TrafficSummary {
		t.Helper()
		m, err := store.LoadMetrics(ctx, st.(settingsStore), app)
		if err != nil {
			t.Fatal(err)
		}
		var pts []api.MetricPoint
		for _, n := range m.Nodes {
			pts = append(pts, n.Points...)
		}
		return api.Summarize(pts, time.Time{})
	}
	collect := func(a *analytics.Collector, what string) analytics.NodeCollectStats {
		t.Helper()
		s, err := a.Collect(ctx)
		if err != nil || s.Nodes[node.Name].Err != nil {
			t.Fatalf("collect: %v %+v", err, s)
		}
		t.Logf("collection (%s): %+v", what, s.Nodes[node.Name])
		return s.Nodes[node.Name]
	}
	collect(a, "baseline") // the rollout's own probes through nginx
	base := total()

	const okN, bigN = 300, 7
	send := func(n int, big bool) {
		client := &http.Client{Timeout: 5 * time.Second}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				var req *http.Request
				if big {
					req, _ = http.NewRequest("POST", "http://"+net.JoinHostPort(node.Address, "80")+"/", bytes.NewReader(make([]byte, 2<<20)))
				} else {
					req, _ = http.NewRequest("GET", "http://"+net.JoinHostPort(node.Address, "80")+"/", nil)
				}
				req.Host = "stats.example.test"
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if want := map[bool]int{false: 200, true: 413}[big]; resp.StatusCode != want {
					t.Errorf("status %d, want %d", resp.StatusCode, want)
				}
			}()
		}
		wg.Wait()
	}
	send(okN, false)
	send(bigN, true)
	cost := collect(a, "300 + 7 requests")
	got := total()
	// nginx writes a refused request's line once it has drained the
	// connection (lingering close): wait, boundedly, for those in flight.
	for end := time.Now().Add(15 * time.Second); got.Requests-base.Requests < okN+bigN && time.Now().Before(end); got = total() {
		time.Sleep(200 * time.Millisecond)
		collect(a, "requests in flight")
	}
	if got.Requests-base.Requests != okN+bigN || got.Status[1]-base.Status[1] != okN || got.Status[3]-base.Status[3] != bigN {
		t.Fatalf("after %d+%d requests: %+v (baseline %+v)", okN, bigN, got, base)
	}
	if got.Bytes-base.Bytes <= 0 || got.P50 <= 0 {
		t.Errorf("bytes %d, p50 %v", got.Bytes-base.Bytes, got.P50)
	}
	// A restarted control plane continues from the stored offset.
	idle := collect(collector(), "restarted, nothing new")
	if again := total(); again.Requests != got.Requests {
		t.Fatalf("a restarted collector counted %d requests twice", again.Requests-got.Requests)
	}
	send(50, false)
	collect(collector(), "restarted, 50 new")
	if now := total(); now.Requests-got.Requests != 50 {
		t.Fatalf("50 new requests counted as %d", now.Requests-got.Requests)
	}
	m, _ := store.LoadMetrics(ctx, st.(settingsStore), app)
	if dk := m.Nodes[0].Disk; dk == nil || dk.Releases == 0 || dk.Repo == 0 || dk.AccessLog == 0 {
		t.Errorf("disk usage: %+v", m.Nodes[0].Disk)
	}
	t.Logf("collection cost per node and cycle: %v and %d bytes for %d new lines; %v and %d bytes when idle", cost.Duration, cost.Bytes, cost.Lines, idle.Duration, idle.Bytes)
}
