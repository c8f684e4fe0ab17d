//go:build e2e

package manager

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/notify"
	"bakery.dev/bakery/scripts/testnodes"
)

// exampleRepo makes a git repository on the control plane holding the
// examples/hello app, and returns its path and a function that commits a
// change (file → content) and returns the new commit.
func exampleRepo(t *testing.T) (string, func(msg string, files map[string]string) string) {
	t.Helper()
	return exampleRepoOf(t, "hello")
}

// exampleRepoOf is exampleRepo for the app of examples/NAME.
func exampleRepoOf(t *testing.T, name string) (string, func(msg string, files map[string]string) string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS("../../examples/"+name+"/app")); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.test", "-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", name+" v1")
	commit := func(msg string, files map[string]string) string {
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		git("add", ".")
		git("commit", "-q", "-m", msg)
		return git("rev-parse", "HEAD")
	}
	return dir, commit
}

func helloDeployment(repo string, nodes ...string) *api.Deployment {
	d := &api.Deployment{
		TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment},
		Metadata: api.ObjectMeta{Name: "hello"},
		Spec: api.DeploymentSpec{
			Source: api.Source{Repo: repo, Ref: "main"},
			Nodes:  nodes,
			Build:  api.Build{Test: "node --test", Build: "node build.js"},
			Run: api.Run{Command: "node server.js", Env: []api.EnvVar{
				{Name: "GREETING", Value: "hello"},
				{Name: "API_SECRET", Value: "canary-7f3e9c1d-secret"},
			}},
			HealthCheck: api.HealthCheck{Path: "/healthz", Interval: &api.Duration{Duration: 100 * time.Millisecond}, Retries: 50},
			Ingress:     &api.Ingress{Hosts: []string{"hello.example.test"}},
			Strategy:    api.Strategy{Drain: &api.Duration{Duration: 200 * time.Millisecond}},
		},
	}
	d.Default()
	return d
}

// get fetches / through the node's nginx with the hello app's host name.
func get(client *http.Client, ip string) (string, error) {
	return getAs(client, ip, "hello.example.test")
}

func getDeployment(t *testing.T, st deployment.Store) *api.Deployment {
	t.Helper()
	o, err := st.Get(t.Context(), api.KindDeployment, "hello")
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.Deployment)
}

func waitDeployment(t *testing.T, st deployment.Store, what string, timeout time.Duration, cond func(d *api.Deployment) bool) *api.Deployment {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := getDeployment(t, st)
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s; status %+v", what, d.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readyAt(commit string) func(d *api.Deployment) bool {
	return func(d *api.Deployment) bool {
		return d.Status.Commit == commit && d.Status.ObservedGeneration == d.Metadata.Generation && api.IsTrue(d.Status.Conditions, api.ConditionReady)
	}
}

func TestE2EDeployment(t *testing.T) {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 3)
	st := testenv.FileStore(t).(deployment.Store)
	pool := labPool(t, lab)
	ctx := t.Context()
	repo, commit := exampleRepo(t)
	createLabNodes(t, st, nodes)
	// Remove what an earlier run left on the shared nodes.
	for _, n := range nodes {
		testnodes.SSH(t, n, `h=/usr/local/lib/bakery/bakery-sudo
for a in hello hello2; do
  for s in blue green; do sudo -n $h systemctl disable $a $s; sudo -n $h systemctl stop $a $s; sudo -n $h unit-remove $a $s; done
  sudo -n $h nginx-site-remove $a; rm -rf /var/lib/bakery/apps/$a
done
sudo -n $h daemon-reload; sudo -n $h nginx-reload`)
	}
	// The control loop as the server runs it: the Manager, with the lab's key.
	key := labKey(t, lab)
	// A Slack-format receiver for failures, on the control plane's host.
	var hookMu sync.Mutex
	var hooks []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hooks = append(hooks, string(b))
		hookMu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	target, err := notify.ParseTarget("url=" + receiver.URL + ",format=slack,on=failures")
	if err != nil {
		t.Fatal(err)
	}
	mgr, _ := runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute, Notify: []notify.Target{target}})
	rec := mgr.deps

	d := helloDeployment(repo, nodes[0].Name, nodes[1].Name, nodes[2].Name)
	c1 := commit("v1", map[string]string{"CHANGES": "v1\n"})
	start := time.Now()
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	got := waitDeployment(t, st, "first rollout Ready", 3*time.Minute, readyAt(c1))
	t.Logf("fresh rollout of the example app on %d nodes (prepared at once, switched one at a time): %v", len(nodes), time.Since(start))
	if ro, err := st.GetRollout(ctx, got.Status.CurrentRollout.ID); err == nil {
		per := map[string]int64{}
		var total int64
		for _, n := range ro.Nodes {
			for _, s := range n.Steps {
				kind, _, _ := strings.Cut(s.Name, " ")
				per[kind] += s.DurationMillis
				total += s.DurationMillis
			}
		}
		t.Logf("step time summed over nodes: total %d ms; build+test %d ms, health %d ms, drain %d ms; Bakery's own (fetch, install, start, switch, prune) %d ms; by step %v",
			total, per["build"], per["health"], per["drain"], per["fetch"]+per["install"]+per["start"]+per["switch"]+per["prune"], per)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	waitFirstServed(t, nodes, "hello.example.test", "hello from "+c1[:12])
	if got.Status.CurrentRollout == nil || got.Status.CurrentRollout.LastLogSeq == 0 {
		t.Fatalf("the deployment's status does not say how far the rollout log got: %+v", got.Status.CurrentRollout)
	}
	if len(got.Status.Nodes) != 3 || got.Status.Nodes[0].ActiveSlot != "blue" || got.Status.Revision != 1 {
		t.Fatalf("status after first rollout: %+v", got.Status)
	}

	// Converged: one round trip per node, nothing written. A second
	// reconciler with its own counters does the measured reconcile.
	rv := got.Metadata.ResourceVersion
	solo := countingConnector{Connector: nodeconn.SSHConnector{Pool: pool}, runs: map[string]*atomic.Int64{}}
	for _, n := range nodes {
		solo.runs[n.Name] = &atomic.Int64{}
	}
	rec2 := &deployment.Reconciler{Store: rec.Store, Connector: solo, Mirrors: rec.Mirrors, Resync: rec.Resync, StepTimeout: rec.StepTimeout}
	for i := range 3 {
		t0 := time.Now()
		if _, err := rec2.Reconcile(ctx, reconciler.Request{Kind: api.KindDeployment, Name: "hello"}); err != nil {
			t.Fatal(err)
		}
		t.Logf("no-op reconcile %d of one deployment on %d nodes: %v", i+1, len(nodes), time.Since(t0))
	}
	for name, c := range solo.runs {
		if c.Load() != 3 {
			t.Errorf("node %s: %d commands for 3 converged reconciles, want 3 (one round trip each)", name, c.Load())
		}
	}
	if now := getDeployment(t, st).Metadata.ResourceVersion; now != rv {
		t.Errorf("a converged reconcile wrote the deployment (rv %s → %s)", rv, now)
	}

	// Canary: never in the unit file or a process list; only in the 0600 env file.
	for _, n := range nodes {
		out, _ := testnodes.SSH(t, n, "cat /etc/systemd/system/bakery-hello-*.service; ps -eo args")
		if strings.Contains(out, "canary-7f3e9c1d") {
			t.Fatalf("%s: the secret env value shows in a unit file or process list", n.Name)
		}
		out, _ = testnodes.Exec(t, n.Name, "stat -c '%a %U' /etc/bakery/env/bakery-hello-blue.env; grep -c canary-7f3e9c1d /etc/bakery/env/bakery-hello-blue.env")
		if f := strings.Fields(out); len(f) != 3 || f[0] != "600" || f[1] != "root" || f[2] != "1" {
			t.Fatalf("%s: env file mode/content: %q", n.Name, out)
		}
	}

	// A new commit rolls out with zero failed requests through nginx.
	load := startLoad(nodes)
	c2 := commit("v2", map[string]string{"build.js": strings.Replace(mustRead(t, repo+"/build.js"), "path.basename(__dirname)", "'v2-' + path.basename(__dirname)", 1)})
	waitDeployment(t, st, "second rollout Ready", 3*time.Minute, readyAt(c2))
	load.check(t, "new commit")
	for _, n := range nodes {
		body, err := get(client, n.Address)
		if err != nil || !strings.HasPrefix(body, "hello from v2-"+c2[:9]) {
			t.Fatalf("%s serves %q after the rollout, %v", n.Name, body, err)
		}
	}

	// A failing test step: the old version keeps serving, Degraded.
	c3 := commit("broken", map[string]string{"lib.test.js": mustRead(t, repo+"/lib.test.js") + "\ntest('broken', () => { throw new Error('broken on purpose') });\n"})
	deg := waitDeployment(t, st, "Degraded", 3*time.Minute, func(d *api.Deployment) bool {
		return api.IsTrue(d.Status.Conditions, api.ConditionDegraded) && d.Status.FailedAttempt != nil && d.Status.FailedAttempt.Commit == c3
	})
	for _, n := range nodes {
		body, err := get(client, n.Address)
		if err != nil || !strings.HasPrefix(body, "hello from v2-"+c2[:9]) {
			t.Fatalf("%s serves %q after a failed rollout, %v; the old version must keep serving", n.Name, body, err)
		}
	}
	logs, err := st.Logs(ctx, deg.Status.CurrentRollout.ID, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, l := range logs {
		text.WriteString(l.Text + "\n")
	}
	// The failure reached the notification target, once.
	deadlineHook := time.Now().Add(30 * time.Second)
	for {
		hookMu.Lock()
		n := 0
		for _, h := range hooks {
			if strings.Contains(h, api.EventRolloutFailed) && strings.Contains(h, "Deployment/hello") {
				n++
			}
		}
		hookMu.Unlock()
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadlineHook) {
			t.Fatalf("RolloutFailed notifications: %d, want 1; got %q", n, hooks)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if evs, err := st.(store.Events).ListEvents(ctx, "Deployment/hello", 0); err != nil || len(evs) == 0 {
		t.Fatalf("no events recorded for the deployment: %v", err)
	}
	if !strings.Contains(text.String(), "broken on purpose") {
		t.Fatalf("the failed rollout's log does not show why:\n%s", text.String())
	}
	if strings.Contains(text.String(), "canary-7f3e9c1d") {
		t.Fatal("the secret env value reached the stored log")
	}
	// A failing health check: the new slot is stopped again, the old one
	// keeps serving, Degraded says why.
	goodTest := mustRead(t, repo+"/lib.test.js")[:strings.Index(mustRead(t, repo+"/lib.test.js"), "\ntest('broken'")] + "\n"
	goodServer := mustRead(t, repo+"/server.js")
	c3h := commit("unhealthy", map[string]string{"lib.test.js": goodTest,
		"server.js": strings.Replace(goodServer, "res.writeHead(200, { 'content-type': 'text/plain' });\n    res.end('ok\\n');", "res.writeHead(500);\n    res.end('sick\\n');", 1)})
	if !strings.Contains(mustRead(t, repo+"/server.js"), "sick") {
		t.Fatal("test setup: the health endpoint was not broken")
	}
	deg = waitDeployment(t, st, "Degraded by the health check", 3*time.Minute, func(d *api.Deployment) bool {
		return d.Status.FailedAttempt != nil && d.Status.FailedAttempt.Commit == c3h
	})
	if !strings.Contains(deg.Status.FailedAttempt.Reason, "health") {
		t.Fatalf("failure reason %q does not name the health check", deg.Status.FailedAttempt.Reason)
	}
	for _, n := range nodes {
		body, err := get(client, n.Address)
		if err != nil || !strings.HasPrefix(body, "hello from v2-"+c2[:9]) {
			t.Fatalf("%s serves %q after a failed health check, %v; the old version must keep serving", n.Name, body, err)
		}
		out, _ := testnodes.SSH(t, n, "systemctl is-active bakery-hello-blue bakery-hello-green")
		if strings.Count(out, "inactive") != 1 && strings.Count(out, "failed") != 1 {
			t.Fatalf("%s: after a failed health check exactly one slot must run, got %q", n.Name, out)
		}
	}
	// While the failed attempt stands, the last good revision is still
	// kept alive: its active unit, stopped behind Bakery's back, runs and
	// serves again, as a drift repair of its revision; the failure stays.
	var slotH string
	for _, ns := range deg.Status.Nodes {
		if ns.Node == nodes[0].Name {
			slotH = ns.ActiveSlot
		}
	}
	if slotH == "" {
		t.Fatalf("no active slot on %s in %+v", nodes[0].Name, deg.Status.Nodes)
	}
	if out, err := testnodes.Exec(t, nodes[0].Name, "systemctl stop bakery-hello-"+slotH+" && systemctl is-active bakery-hello-"+slotH); err == nil {
		t.Fatalf("stopping the active unit: still active: %q", out)
	}
	tRepair := time.Now()
	deadline := time.Now().Add(time.Minute)
	for {
		out, _ := testnodes.Exec(t, nodes[0].Name, "systemctl is-active bakery-hello-"+slotH)
		body, err := get(client, nodes[0].Address)
		if strings.TrimSpace(out) == "active" && err == nil && strings.HasPrefix(body, "hello from v2-"+c2[:9]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last good revision's stopped unit was not repaired while Degraded: unit %q, serves %q, %v", out, body, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("stopped unit of the last good revision repaired while Degraded in %v", time.Since(tRepair))
	held := getDeployment(t, st)
	if fa := held.Status.FailedAttempt; fa == nil || fa.Commit != c3h || !api.IsTrue(held.Status.Conditions, api.ConditionDegraded) ||
		api.IsTrue(held.Status.Conditions, api.ConditionReady) || held.Status.Revision != deg.Status.Revision || held.Status.Commit != c2 {
		t.Fatalf("a drift repair while Degraded changed the failure or the revision: %+v", held.Status)
	}
	// The unit serves once started, before the repair's health check
	// and its end are recorded: wait (bounded) for the record.
	var rs []*api.Rollout
	// The repair names the failed attempt that stands (c3h).
	var repaired *api.Rollout
	for end := time.Now().Add(30 * time.Second); repaired == nil && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		rs, err = st.ListRollouts(ctx, "hello", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ro := range rs {
			if ro.Trigger == api.TriggerDriftRepair && ro.State == api.RolloutSucceeded && strings.Contains(ro.Message, c3h[:12]) {
				repaired = ro
				break
			}
		}
	}
	if repaired == nil || repaired.Revision != deg.Status.Revision || repaired.Commit != c2 ||
		!strings.Contains(repaired.Message, fmt.Sprintf("drift repair of revision %d", deg.Status.Revision)) {
		t.Fatalf("no drift-repair rollout of revision %d (commit %s) after the failed attempt: %+v", deg.Status.Revision, c2, rs)
	}
	for _, rn := range repaired.Nodes {
		if rn.Node != nodes[0].Name {
			t.Errorf("the repair touched node %s, whose unit ran", rn.Node)
		}
	}
	for _, ro := range rs {
		if ro.Commit == c3h && ro.ID != deg.Status.CurrentRollout.ID {
			t.Fatalf("the failed commit was retried: rollout %s", ro.ID)
		}
	}

	// A fixed commit recovers.
	c4 := commit("fixed", map[string]string{"server.js": goodServer})
	waitDeployment(t, st, "recovered", 3*time.Minute, readyAt(c4))

	// Drift: stop the active unit on one node, delete the site on the other.
	cur := getDeployment(t, st)
	slot0 := cur.Status.Nodes[0].ActiveSlot
	rev := cur.Status.Revision
	testnodes.SSH(t, nodes[0], "sudo -n /usr/local/lib/bakery/bakery-sudo systemctl stop hello "+slot0)
	testnodes.SSH(t, nodes[1], "sudo -n /usr/local/lib/bakery/bakery-sudo nginx-site-remove hello && sudo -n /usr/local/lib/bakery/bakery-sudo nginx-reload")
	deadline = time.Now().Add(time.Minute)
	for {
		b0, e0 := get(client, nodes[0].Address)
		b1, e1 := get(client, nodes[1].Address)
		if e0 == nil && e1 == nil && strings.HasPrefix(b0, "hello") && strings.HasPrefix(b1, "hello") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drift not repaired: %q %v / %q %v", b0, e0, b1, e1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := getDeployment(t, st).Status.Revision; r != rev {
		t.Fatalf("drift repair made a new revision: %d → %d", rev, r)
	}

	// Rollback under load: back to c2's revision, whose release the idle
	// slot still holds (no rebuild), then a restart: both with no failed request.
	load = startLoad(nodes)
	before := getDeployment(t, st)
	if _, err := mgr.DeploymentAction(ctx, "hello", api.ActionRequest{Action: api.ActionRollback, By: "user:e2e"}); err != nil {
		t.Fatal(err)
	}
	rb := waitDeployment(t, st, "rolled back", 3*time.Minute, readyAt(c2))
	if rb.Status.Revision <= before.Status.Revision {
		t.Fatalf("a rollback makes a new revision: %d → %d", before.Status.Revision, rb.Status.Revision)
	}
	ros, err := st.ListRollouts(ctx, "hello", 1)
	if err != nil || len(ros) != 1 || ros[0].Trigger != api.TriggerRollback || ros[0].TriggeredBy != "user:e2e" {
		t.Fatalf("latest rollout: %+v %v", ros, err)
	}
	for _, n := range ros[0].Nodes {
		for _, step := range n.Steps {
			if strings.HasPrefix(step.Name, string(deployment.ActBuild)) || strings.HasPrefix(step.Name, string(deployment.ActFetch)) {
				t.Fatalf("rollback to a kept release rebuilt it: %s on %s", step.Name, n.Node)
			}
		}
	}
	for _, n := range nodes {
		if body, err := get(client, n.Address); err != nil || !strings.HasPrefix(body, "hello from v2-"+c2[:9]) {
			t.Fatalf("%s serves %q after the rollback, %v", n.Name, body, err)
		}
	}
	// The rolled-back-from commit is not deployed again on its own.
	d2, err := mgr.DeploymentAction(ctx, "hello", api.ActionRequest{Action: api.ActionRestart, By: "restarter"})
	if err != nil {
		t.Fatal(err)
	}
	slots := map[string]string{}
	for _, ns := range d2.Status.Nodes {
		slots[ns.Node] = ns.ActiveSlot
	}
	restarted := waitDeployment(t, st, "restarted", 3*time.Minute, func(d *api.Deployment) bool {
		return d.Status.RestartDone == d2.Status.Restart && api.IsTrue(d.Status.Conditions, api.ConditionReady)
	})
	for _, ns := range restarted.Status.Nodes {
		if ns.ActiveSlot == slots[ns.Node] || ns.Commit != c2 {
			t.Fatalf("restart on %s: slot %s → %s, commit %s", ns.Node, slots[ns.Node], ns.ActiveSlot, ns.Commit)
		}
	}
	if ros, err := st.ListRollouts(ctx, "hello", 1); err != nil || len(ros) != 1 || ros[0].Trigger != api.TriggerRestart || ros[0].TriggeredBy != "restarter" {
		t.Fatalf("restart rollout: %+v %v", ros, err)
	}
	load.check(t, "rollback and restart")
	if got := getDeployment(t, st).Status.Commit; got != c2 {
		t.Fatalf("the loop rolled forward to %s on its own after a rollback", got)
	}
	t.Logf("zero-downtime total: %d requests, 0 failed", totalRequests.Load())

	// The nodes record the last successful deployment.
	for _, n := range nodes {
		if ld := getNode(t, st, n.Name).Status.LastDeployment; ld == nil || ld.Deployment != "hello" || ld.Commit != c2 {
			t.Errorf("node %s: last deployment %+v", n.Name, ld)
		}
	}

	// A second app on the same nodes gets its own ports and serves beside
	// the first; deleting the first removes it from the nodes and leaves
	// the second serving.
	other := helloDeployment(repo, nodes[0].Name, nodes[1].Name)
	other.Metadata.Name = "hello2"
	other.Spec.Ingress.Hosts = []string{"hello2.example.test"}
	if _, err := st.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3 * time.Minute)
	for {
		o, _ := st.Get(ctx, api.KindDeployment, "hello2")
		if d := o.(*api.Deployment); api.IsTrue(d.Status.Conditions, api.ConditionReady) {
			ports := map[int]bool{}
			for _, ns := range getDeployment(t, st).Status.Nodes {
				ports[ns.Port] = true
			}
			for _, ns := range d.Status.Nodes {
				if ports[ns.Port] {
					t.Fatalf("hello2 got port %d on %s, which hello uses", ns.Port, ns.Node)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hello2 not Ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	getHost := func(ip, host string) (string, error) {
		req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(ip, "80")+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))), nil
	}
	cur = getDeployment(t, st)
	cur.Metadata.Annotations = map[string]string{api.AnnotationDeletionRequested: "now"}
	cur.Metadata.ResourceVersion = ""
	if _, err := st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		if _, err := st.Get(ctx, api.KindDeployment, "hello"); errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hello not deleted: %+v", getDeployment(t, st).Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, n := range nodes {
		out, _ := testnodes.SSH(t, n, "ls /var/lib/bakery/apps /etc/systemd/system /etc/nginx/conf.d")
		if strings.Contains(out, "hello\n") || strings.Contains(out, "bakery-hello.conf") || strings.Contains(out, "bakery-hello-") {
			t.Errorf("%s: hello left behind:\n%s", n.Name, out)
		}
		if n.Name == nodes[2].Name {
			continue // hello2 runs on the first two nodes only
		}
		if body, err := getHost(n.Address, "hello2.example.test"); err != nil || !strings.HasPrefix(body, "200 hello from") {
			t.Errorf("%s: hello2 answers %q, %v after hello's deletion", n.Name, body, err)
		}
	}
}

var totalRequests atomic.Int64

// load sends requests through every node's nginx until check is called.
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	failures sync.Map
}

// startLoad keeps requests going to the hello app through every node's
// nginx until check.
func startLoad(nodes []testnodes.Node) *load {
	return startLoadAs(nodes, "hello.example.test")
}

func (l *load) check(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	totalRequests.Add(l.ok.Load() + l.fail.Load())
	t.Logf("zero downtime during %s: %d requests ok, %d failed", what, l.ok.Load(), l.fail.Load())
	if l.fail.Load() > 0 {
		l.failures.Range(func(k, _ any) bool { t.Errorf("request failed: %v", k); return true })
		t.Fatalf("%d requests failed during %s", l.fail.Load(), what)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
