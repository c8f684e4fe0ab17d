//go:build e2e

package manager

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/analytics"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/scripts/testnodes"
)

const (
	dockerApp    = "dhello"
	dockerHost   = "dhello.example.test"
	dockerCanary = "canary-docker-5b1e77"
)

func dockerDeployment(repo string, nodes ...string) *api.Deployment {
	d := &api.Deployment{
		TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment},
		Metadata: api.ObjectMeta{Name: dockerApp},
		Spec: api.DeploymentSpec{
			Source:  api.Source{Repo: repo, Ref: "main"},
			Nodes:   nodes,
			Runtime: api.RuntimeDocker,
			Run: api.Run{Env: []api.EnvVar{
				{Name: "GREETING", Value: "hello"},
				{Name: "API_SECRET", Value: dockerCanary},
			}},
			HealthCheck: api.HealthCheck{Path: "/healthz", Interval: &api.Duration{Duration: 100 * time.Millisecond}, Retries: 50},
			Ingress:     &api.Ingress{Hosts: []string{dockerHost}},
			Strategy:    api.Strategy{Drain: &api.Duration{Duration: 200 * time.Millisecond}},
		},
	}
	d.Default()
	return d
}

// getAs fetches / through a node's nginx for a host name.
func getAs(client *http.Client, ip, host string) (string, error) {
	req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(ip, "80")+"/", nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b)), nil
}

// startLoadAs is startLoad for another host name.
func startLoadAs(nodes []testnodes.Node, host string) *load {
	l := &load{stop: make(chan struct{})}
	for _, n := range nodes {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if _, err := getAs(c, n.Address, host); err != nil {
					l.fail.Add(1)
					l.failures.Store(err.Error(), true)
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

// stepTimes sums a rollout's step durations by step kind (build, start, …).
func stepTimes(t *testing.T, st deployment.Store, id string) (map[string]int64, *api.Rollout) {
	t.Helper()
	ro, err := st.GetRollout(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int64{}
	for _, n := range ro.Nodes {
		for _, s := range n.Steps {
			kind, _, _ := strings.Cut(s.Name, " ")
			per[kind] += s.DurationMillis
		}
	}
	return per, ro
}

func logStepTimes(t *testing.T, what string, per map[string]int64, nodes int) {
	t.Helper()
	var kinds []string
	var total int64
	for k, v := range per {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		total += v
	}
	sort.Strings(kinds)
	t.Logf("%s on %d nodes, step time summed over nodes (ms): total %d; build %d, start %d, health %d, switch %d; all: %s",
		what, nodes, total, per["build"], per["start"], per["health"], per["switch"], strings.Join(kinds, ", "))
}

// TestE2EDocker rolls the example app out as docker containers to two
// real nodes (a real dockerd in each) and takes it through a zero-downtime
// rollout and rollback, drift repair, a failing docker build and deletion.
func TestE2EDocker(t *testing.T) {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 2)[:2]
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	repo, commit := exampleRepo(t)
	var names []string
	for _, n := range nodes {
		nn := labNode(n.Name, n.Address)
		nn.Spec.HostKey = n.HostKey
		if _, err := st.Create(ctx, nn); err != nil {
			t.Fatal(err)
		}
		names = append(names, n.Name)
		// What an earlier run may have left.
		testnodes.SSH(t, n, `for s in blue green; do docker rm -f bakery-dhello-$s; done >/dev/null 2>&1
imgs=$(docker image ls -q bakery/dhello); [ -z "$imgs" ] || docker image rm -f $imgs >/dev/null
h=/usr/local/lib/bakery/bakery-sudo; sudo -n $h nginx-site-remove dhello && sudo -n $h nginx-reload; rm -rf /var/lib/bakery/apps/dhello`)
	}
	key := labKey(t, lab)
	mgr, _ := runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute})
	client := &http.Client{Timeout: 5 * time.Second}
	serves := func(what, want string) {
		t.Helper()
		for _, n := range nodes {
			if body, err := getAs(client, n.Address, dockerHost); err != nil || !strings.HasPrefix(body, want) {
				t.Fatalf("%s: %s serves %q, %v; want %q", what, n.Name, body, err, want)
			}
		}
	}

	// Fresh deploy to two docker nodes.
	c1 := commit("v1", map[string]string{"CHANGES": "v1\n"})
	start := time.Now()
	if _, err := st.Create(ctx, dockerDeployment(repo, names...)); err != nil {
		t.Fatal(err)
	}
	first := waitDockerDeployment(t, st, "first docker rollout Ready", 3*time.Minute, dockerReadyAt(c1))
	t.Logf("fresh docker rollout on %d nodes (prepared at once, switched one at a time): %v", len(nodes), time.Since(start))
	per, _ := stepTimes(t, st, first.Status.CurrentRollout.ID)
	logStepTimes(t, "fresh docker rollout", per, len(nodes))
	serves("first rollout", "hello from "+c1[:12])
	// The traffic/disk analytics report the size of the app's images.
	ana := &analytics.Collector{Store: st, Settings: st.(settingsStore), Connector: nodeconn.SSHConnector{Pool: labPool(t, lab)}}
	if _, err := ana.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := store.LoadMetrics(ctx, st.(settingsStore), dockerApp); err != nil || len(m.Nodes) != len(nodes) {
		t.Fatalf("metrics after a collection: %+v, %v", m, err)
	} else {
		for _, nm := range m.Nodes {
			if nm.Disk == nil || nm.Disk.Images <= 0 || nm.Disk.Releases <= 0 {
				t.Errorf("%s: disk usage of a docker app %+v: want its images' size", nm.Node, nm.Disk)
			}
		}
	}
	// Converged: containers and images are observed in the same single
	// round trip per node as the rest (a reconciler with its own counters).
	rec := mgr.deps
	solo := countingConnector{Connector: nodeconn.SSHConnector{Pool: labPool(t, lab)}, runs: map[string]*atomic.Int64{}}
	for _, n := range nodes {
		solo.runs[n.Name] = &atomic.Int64{}
	}
	rec2 := &deployment.Reconciler{Store: rec.Store, Connector: solo, Mirrors: rec.Mirrors, Resync: rec.Resync, StepTimeout: rec.StepTimeout}
	for i := range 3 {
		t0 := time.Now()
		if _, err := rec2.Reconcile(ctx, reconciler.Request{Kind: api.KindDeployment, Name: dockerApp}); err != nil {
			t.Fatal(err)
		}
		t.Logf("no-op reconcile %d of a docker deployment on %d nodes: %v", i+1, len(nodes), time.Since(t0))
	}
	for name, c := range solo.runs {
		if c.Load() != 3 {
			t.Errorf("node %s: %d commands for 3 converged reconciles of a docker app, want 3 (one round trip each)", name, c.Load())
		}
	}
	for _, n := range nodes {
		slot := "blue"
		out, err := testnodes.SSH(t, n, `cat /var/lib/bakery/apps/dhello/state.json; stat -c '%a %U' /var/lib/bakery/apps/dhello/run/`+slot+`.env
docker inspect --format '{{.State.Status}} init={{.HostConfig.Init}} restart={{.HostConfig.RestartPolicy.Name}} app={{index .Config.Labels "bakery.app"}} slot={{index .Config.Labels "bakery.slot"}} commit={{index .Config.Labels "bakery.commit"}} revision={{index .Config.Labels "bakery.revision"}} ports={{json .HostConfig.PortBindings}}' bakery-dhello-`+slot)
		if err != nil {
			t.Fatalf("%s: %v\n%s", n.Name, err, out)
		}
		for _, want := range []string{`"dockerized": true`, "600 bakery-agent", "running init=true restart=unless-stopped app=dhello slot=blue commit=" + c1 + " revision=1", `"HostIp":"127.0.0.1"`} {
			if !strings.Contains(out, want) {
				t.Fatalf("%s: want %q in\n%s", n.Name, want, out)
			}
		}
		// The secret is in the env file only: never in docker run's
		// arguments, a process list, the container's command or a log.
		out, _ = testnodes.SSH(t, n, `ps -eo args; docker inspect --format '{{json .Args}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}' bakery-dhello-blue; grep -c '`+dockerCanary[:len(dockerCanary)-1]+`[`+dockerCanary[len(dockerCanary)-1:]+`]' /var/lib/bakery/apps/dhello/run/blue.env`)
		if strings.Count(out, dockerCanary) != 0 || !strings.HasSuffix(strings.TrimSpace(out), "1") {
			t.Fatalf("%s: the secret shows outside its env file (or is missing from it):\n%s", n.Name, out)
		}
	}
	// Runtime logs come from docker logs.
	var logMu sync.Mutex
	var runtimeLog []api.RuntimeLogLine
	if err := mgr.RuntimeLogs(ctx, dockerApp, api.RuntimeLogRequest{Lines: 20}, func(l api.RuntimeLogLine) {
		logMu.Lock()
		runtimeLog = append(runtimeLog, l)
		logMu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range runtimeLog {
		if strings.Contains(l.Text, "hello "+c1[:12]+" listening on port") {
			seen[l.Node] = true
		}
	}
	if len(seen) != len(nodes) {
		t.Fatalf("runtime logs do not show the containers' start line on every node: %+v", runtimeLog)
	}

	// A new commit rolls out with zero failed requests.
	load := startLoadAs(nodes, dockerHost)
	c2 := commit("v2", map[string]string{"CHANGES": "v2\n"})
	second := waitDockerDeployment(t, st, "second docker rollout Ready", 3*time.Minute, dockerReadyAt(c2))
	load.check(t, "docker rollout of a new commit")
	per, _ = stepTimes(t, st, second.Status.CurrentRollout.ID)
	logStepTimes(t, "docker rollout of a new commit", per, len(nodes))
	serves("second rollout", "hello from "+c2[:12])
	for _, n := range nodes {
		// The old slot stopped gracefully (SIGTERM reached httpd through
		// --init: not killed after the stop timeout).
		out, _ := testnodes.SSH(t, n, `docker inspect --format '{{.State.Status}} {{.State.ExitCode}}' bakery-dhello-blue`)
		if f := strings.Fields(out); len(f) != 2 || f[0] != "exited" || f[1] == "137" {
			t.Fatalf("%s: old slot's container after the switch: %q (want exited, not killed)", n.Name, out)
		}
		// An image beyond keepReleases that the next rollout prunes.
		testnodes.SSH(t, n, `docker tag bakery-busybox:latest bakery/dhello:0000000000000000000000000000000000000000-stale`)
	}

	// Rollback under load: the idle slot's image is still there, so
	// nothing is fetched or built.
	load = startLoadAs(nodes, dockerHost)
	if _, err := mgr.DeploymentAction(ctx, dockerApp, api.ActionRequest{Action: api.ActionRollback}); err != nil {
		t.Fatal(err)
	}
	rb := waitDockerDeployment(t, st, "rolled back", 3*time.Minute, dockerReadyAt(c1))
	per, ro := stepTimes(t, st, rb.Status.CurrentRollout.ID)
	logStepTimes(t, "docker rollback", per, len(nodes))
	if ro.Trigger != api.TriggerRollback || per["build"] != 0 || per["fetch"] != 0 {
		t.Fatalf("rollback rollout: trigger %s, steps %v (want no build or fetch)", ro.Trigger, per)
	}
	serves("rollback", "hello from "+c1[:12])
	for _, n := range nodes {
		out, _ := testnodes.SSH(t, n, `docker image ls --format '{{.Tag}}' bakery/dhello`)
		if strings.Contains(out, "stale") || strings.Count(strings.TrimSpace(out), "\n") != 1 {
			t.Fatalf("%s: images after the rollback's prune:\n%s", n.Name, out)
		}
	}
	// A restart (same revision into the other slot), still under load.
	d2, err := mgr.DeploymentAction(ctx, dockerApp, api.ActionRequest{Action: api.ActionRestart})
	if err != nil {
		t.Fatal(err)
	}
	slots := map[string]string{}
	for _, ns := range d2.Status.Nodes {
		slots[ns.Node] = ns.ActiveSlot
	}
	restarted := waitDockerDeployment(t, st, "restarted", 3*time.Minute, func(d *api.Deployment) bool {
		return d.Status.RestartDone == d2.Status.Restart && api.IsTrue(d.Status.Conditions, api.ConditionReady)
	})
	load.check(t, "docker rollback and restart")
	for _, ns := range restarted.Status.Nodes {
		if ns.ActiveSlot == slots[ns.Node] || ns.Commit != c1 {
			t.Fatalf("restart on %s: slot %s → %s, commit %s", ns.Node, slots[ns.Node], ns.ActiveSlot, ns.Commit)
		}
	}

	// Drift: the active container stopped on one node, removed on the
	// other; resync starts and recreates them without a new revision.
	cur := getDockerDeployment(t, st)
	rev := cur.Status.Revision
	testnodes.SSH(t, nodes[0], "docker stop bakery-dhello-"+cur.Status.Nodes[0].ActiveSlot)
	testnodes.SSH(t, nodes[1], "docker rm -f bakery-dhello-"+cur.Status.Nodes[1].ActiveSlot)
	deadline := time.Now().Add(time.Minute)
	for {
		b0, e0 := getAs(client, nodes[0].Address, dockerHost)
		b1, e1 := getAs(client, nodes[1].Address, dockerHost)
		if e0 == nil && e1 == nil && strings.HasPrefix(b0, "hello from "+c1[:12]) && strings.HasPrefix(b1, "hello from "+c1[:12]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker drift not repaired: %q %v / %q %v", b0, e0, b1, e1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := getDockerDeployment(t, st).Status.Revision; r != rev {
		t.Fatalf("drift repair made a new revision: %d → %d", rev, r)
	}

	// Host networking: a second app on one node, its container in the
	// node's network namespace, listening on the slot port itself.
	hd := dockerDeployment(repo, nodes[0].Name)
	hd.Metadata.Name = "dhost"
	hd.Spec.Docker.Network = "host"
	hd.Spec.Ingress.Hosts = []string{"dhost.example.test"}
	testnodes.SSH(t, nodes[0], `docker rm -f bakery-dhost-blue bakery-dhost-green >/dev/null 2>&1; rm -rf /var/lib/bakery/apps/dhost`)
	if _, err := st.Create(ctx, hd); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		o, _ := st.Get(ctx, api.KindDeployment, "dhost")
		if api.IsTrue(o.(*api.Deployment).Status.Conditions, api.ConditionReady) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dhost not Ready: %+v", o.(*api.Deployment).Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if body, err := getAs(client, nodes[0].Address, "dhost.example.test"); err != nil || !strings.HasPrefix(body, "hello from "+c2[:12]) {
		t.Fatalf("host-network app serves %q, %v", body, err)
	}
	if out, _ := testnodes.SSH(t, nodes[0], `docker inspect --format '{{.HostConfig.NetworkMode}}' bakery-dhost-blue`); strings.TrimSpace(out) != "host" {
		t.Fatalf("dhost's container network: %q", out)
	}
	o, _ := st.Get(ctx, api.KindDeployment, "dhost")
	hd = o.(*api.Deployment)
	hd.Metadata.Annotations = map[string]string{api.AnnotationDeletionRequested: "now"}
	hd.Metadata.ResourceVersion = ""
	if _, err := st.Update(ctx, hd); err != nil {
		t.Fatal(err)
	}

	// A failing docker build (with a spec change, which ends the
	// rollback's pin): the old version keeps serving, Degraded, and the
	// build output is in the rollout log.
	c3 := commit("broken build", map[string]string{"Dockerfile": mustRead(t, repo+"/Dockerfile") + "RUN echo broken-build-on-purpose && false\n"})
	cur = getDockerDeployment(t, st)
	cur.Spec.Run.Env[0].Value = "hi"
	cur.Metadata.ResourceVersion = "" // the loop writes status meanwhile
	if _, err := st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	deg := waitDockerDeployment(t, st, "Degraded by a failing docker build", 3*time.Minute, func(d *api.Deployment) bool {
		return api.IsTrue(d.Status.Conditions, api.ConditionDegraded) && d.Status.FailedAttempt != nil && d.Status.FailedAttempt.Commit == c3
	})
	serves("failed build", "hello from "+c1[:12])
	logs, err := st.Logs(ctx, deg.Status.CurrentRollout.ID, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, l := range logs {
		text.WriteString(l.Text + "\n")
	}
	for _, want := range []string{"broken-build-on-purpose", "docker build failed"} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("the failed rollout's log lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), dockerCanary) {
		t.Fatal("the secret reached the stored log")
	}

	// Deleting the deployment removes containers, images and files.
	cur = getDockerDeployment(t, st)
	cur.Metadata.Annotations = map[string]string{api.AnnotationDeletionRequested: "now"}
	cur.Metadata.ResourceVersion = ""
	if _, err := st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		if _, err := st.Get(ctx, api.KindDeployment, dockerApp); errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not deleted: %+v", dockerApp, getDockerDeployment(t, st).Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, n := range nodes {
		out, err := testnodes.SSH(t, n, `echo containers $(docker ps -aq --filter label=bakery.app=dhello | wc -l) images $(docker image ls -q bakery/dhello | wc -l); ls /var/lib/bakery/apps /etc/nginx/conf.d`)
		if err != nil || !strings.HasPrefix(out, "containers 0 images 0\n") || strings.Contains(out, "dhello") {
			t.Fatalf("%s: the docker app left things behind (%v):\n%s", n.Name, err, out)
		}
	}
}

func getDockerDeployment(t *testing.T, st deployment.Store) *api.Deployment {
	t.Helper()
	o, err := st.Get(t.Context(), api.KindDeployment, dockerApp)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.Deployment)
}

func waitDockerDeployment(t *testing.T, st deployment.Store, what string, timeout time.Duration, cond func(d *api.Deployment) bool) *api.Deployment {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := getDockerDeployment(t, st)
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s; status %+v", what, d.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dockerReadyAt(commit string) func(d *api.Deployment) bool {
	return func(d *api.Deployment) bool {
		return d.Status.Commit == commit && d.Status.ObservedGeneration == d.Metadata.Generation && api.IsTrue(d.Status.Conditions, api.ConditionReady)
	}
}
