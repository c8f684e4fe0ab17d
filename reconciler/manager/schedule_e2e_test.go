//go:build e2e

package manager

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/notify"
	"bakery.dev/bakery/scripts/testnodes"
	"bakery.dev/bakery/sshexec"
)

// schedFor returns the status of schedule name.
func schedFor(d *api.Deployment, name string) *api.ScheduleStatus {
	for i := range d.Status.Schedules {
		if d.Status.Schedules[i].Name == name {
			return &d.Status.Schedules[i]
		}
	}
	return nil
}

// TestE2ESchedules: schedules of a systemd app on 3 real nodes, under
// continuous requests through nginx. A schedule every 2 s runs on one
// node in the active release and switches release with the web process;
// a failing run raises ScheduleFailed (and a notification) once; Forbid
// never lets runs overlap; a deleted timer comes back; a schedule dropped
// from the spec and, at last, the deleted app leave no unit behind.
func TestE2ESchedules(t *testing.T) {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 3)
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	repo, commit := exampleRepo(t)
	createLabNodes(t, st, nodes)
	for _, n := range nodes {
		testnodes.SSH(t, n, `h=/usr/local/lib/bakery/bakery-sudo
sudo -n $h sched-remove hello >/dev/null 2>&1
for s in blue green; do sudo -n $h systemctl disable hello $s; sudo -n $h systemctl stop hello $s; sudo -n $h unit-remove hello $s; done
sudo -n $h nginx-site-remove hello; rm -rf /var/lib/bakery/apps/hello; sudo -n $h app-remove hello
sudo -n $h daemon-reload; sudo -n $h nginx-reload`)
	}
	for _, n := range nodes {
		// Persistent='s records of an earlier run's timers (helpers before
		// sched-remove removed them): no catch-up run at once.
		testnodes.Exec(t, n.Name, "rm -f /var/lib/systemd/timers/stamp-bakery-hello-sched-*")
	}
	key := labKey(t, lab)
	var hookMu sync.Mutex
	var hooks []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hooks = append(hooks, string(b))
		hookMu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	target, err := notify.ParseTarget("url=" + receiver.URL + ",format=json,on=failures")
	if err != nil {
		t.Fatal(err)
	}
	mgr, _ := runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute, Notify: []notify.Target{target}})

	d := helloDeployment(repo, nodes[0].Name, nodes[1].Name, nodes[2].Name)
	d.Spec.Schedules = []api.Schedule{
		// Every 2 s, on one node: the release it ran in.
		{Name: "stamp", Schedule: "*:*:0/2", Command: `echo "$BAKERY_RELEASE $GREETING" >> "$HOME/stamp.log"; echo "stamp ran in $BAKERY_RELEASE"`},
		// Every 2 s on every node, each run 5 s: Forbid skips the runs due
		// while one runs.
		{Name: "overlap", Schedule: "*:*:0/2", Node: api.ScheduleNodeAll, Timeout: &api.Duration{Duration: 30 * time.Second},
			Command: `echo "start $(date +%s%N)" >> "$HOME/overlap.log"; sleep 5; echo "end $(date +%s%N)" >> "$HOME/overlap.log"`},
		// Fails on its first run only, then succeeds every 10 s.
		{Name: "flaky", Schedule: "*:*:0/10", Command: `if [ ! -e "$HOME/flaky-failed" ]; then touch "$HOME/flaky-failed"; echo "flaky failing on purpose"; exit 3; fi; echo "flaky ok"`},
		// Allow: the same 5 s job every 2 s may overlap.
		{Name: "parallel", Schedule: "*:*:0/2", Concurrency: api.ConcurrencyAllow, Timeout: &api.Duration{Duration: 30 * time.Second},
			Command: `echo "start $(date +%s%N)" >> "$HOME/parallel.log"; sleep 5; echo "end $(date +%s%N)" >> "$HOME/parallel.log"`},
	}
	d.Default()
	c1 := commit("v1", map[string]string{"CHANGES": "v1\n"})
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitDeployment(t, st, "first rollout Ready", 3*time.Minute, readyAt(c1))
	load := startLoad(nodes)

	// stamp runs on the first node only (all are Ready), in c1's release.
	got := waitDeployment(t, st, "stamp reported", time.Minute, func(d *api.Deployment) bool {
		s := schedFor(d, "stamp")
		return s != nil && s.LastRun != nil && s.NextRun != nil && s.Result == "succeeded"
	})
	if s := schedFor(got, "stamp"); len(s.Nodes) != 1 || s.Nodes[0] != nodes[0].Name || s.Calendar != "*:*:0/2" || s.Duration == nil {
		t.Fatalf("stamp status: %+v, want it on %s only", s, nodes[0].Name)
	}
	if s := schedFor(got, "overlap"); s == nil || len(s.Nodes) != 3 {
		t.Fatalf("overlap status: %+v, want all 3 nodes", s)
	}
	// What the schedules add to the one observe round trip: node1 runs
	// all 4, node2 one (the same app, the same single command).
	pool := labPool(t, lab)
	for _, i := range []int{0, 1} {
		ex := pool.Executor(sshexec.Target{Addr: nodes[i].Addr(), User: nodes[i].User, HostKey: nodes[i].HostKey})
		var total time.Duration
		for range 5 {
			t0 := time.Now()
			obs, err := nodescript.ObserveAppOn(ctx, ex, nodescript.ObserveAppInput{App: "hello", Runtime: api.RuntimeSystemd}, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			total += time.Since(t0)
			if i == 0 && len(obs.Schedules) != 4 {
				t.Fatalf("observe on %s: %d schedules, want 4", nodes[i].Name, len(obs.Schedules))
			}
		}
		t.Logf("observe round trip on %s (%d schedule(s)): %v on average over 5", nodes[i].Name, map[int]int{0: 4, 1: 1}[i], total/5)
	}
	stampLog := func() string {
		out, _ := testnodes.Exec(t, nodes[0].Name, "cat /var/lib/bakery-apps/hello/data/stamp.log 2>/dev/null")
		return out
	}
	waitFor(t, 30*time.Second, "stamp writes c1's release", func() bool { return strings.Contains(stampLog(), c1+"-") })
	for _, n := range nodes[1:] {
		if out, _ := testnodes.Exec(t, n.Name, "ls /etc/systemd/system/ | grep -c 'bakery-hello-sched-stamp' || true"); strings.TrimSpace(out) != "0" {
			t.Errorf("%s has stamp's units (node: one runs it on %s only)", n.Name, nodes[0].Name)
		}
	}

	// A failed run: one event, one notification, its output in the logs.
	waitFor(t, time.Minute, "flaky's failed run raised ScheduleFailed", func() bool { return countEvents(t, st, "schedule flaky") == 1 })
	// After it, flaky succeeds: wait for a later run, then check the
	// failure was not raised again at each resync meanwhile.
	waitDeployment(t, st, "flaky succeeded after its failure", time.Minute, func(d *api.Deployment) bool {
		s := schedFor(d, "flaky")
		return s != nil && s.Result == "succeeded"
	})
	if n := countEvents(t, st, "schedule flaky"); n != 1 {
		t.Fatalf("ScheduleFailed events for flaky: %d, want 1", n)
	}
	waitFor(t, 30*time.Second, "the failure notification", func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		n := 0
		for _, h := range hooks {
			if strings.Contains(h, api.EventScheduleFailed) {
				n++
			}
		}
		return n == 1
	})
	var logText strings.Builder
	var logMu sync.Mutex
	if err := mgr.RuntimeLogs(ctx, "hello", api.RuntimeLogRequest{Lines: 200, Schedule: "flaky"}, func(l api.RuntimeLogLine) {
		logMu.Lock()
		logText.WriteString(l.Text + "\n")
		logMu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logText.String(), "flaky failing on purpose") || !strings.Contains(logText.String(), "flaky ok") {
		t.Fatalf("runtime logs of schedule flaky lack its runs' output:\n%s", logText.String())
	}

	// Drift: a deleted timer comes back.
	testnodes.Exec(t, nodes[0].Name, "systemctl disable --now bakery-hello-sched-stamp.timer; rm -f /etc/systemd/system/bakery-hello-sched-stamp.timer; systemctl daemon-reload")
	waitFor(t, time.Minute, "the deleted timer repaired", func() bool {
		out, _ := testnodes.Exec(t, nodes[0].Name, "systemctl is-active bakery-hello-sched-stamp.timer")
		return strings.TrimSpace(out) == "active"
	})

	// A new commit: the schedules switch release with the web process.
	c2 := commit("v2", map[string]string{"CHANGES": "v2\n"})
	rolled := waitDeployment(t, st, "second rollout Ready", 3*time.Minute, readyAt(c2))
	if per, ro := stepTimes(t, st, rolled.Status.CurrentRollout.ID); ro != nil {
		t.Logf("rollout of a new commit on 3 nodes with 4 schedules: schedule steps %d ms summed over nodes (%d steps: 4 on the first node, 1 on each other); whole rollout steps %v", per["schedule"], countSteps(ro, "schedule"), per)
	}
	waitFor(t, 30*time.Second, "stamp writes c2's release", func() bool {
		lines := strings.Split(strings.TrimSpace(stampLog()), "\n")
		return strings.HasPrefix(lines[len(lines)-1], c2+"-")
	})
	// Once a run was in c2's release, none is in c1's again.
	lines := strings.Split(strings.TrimSpace(stampLog()), "\n")
	seen2 := false
	for _, l := range lines {
		seen2 = seen2 || strings.HasPrefix(l, c2+"-")
		if seen2 && strings.HasPrefix(l, c1+"-") {
			t.Fatalf("stamp ran in c1's release after it ran in c2's:\n%s", strings.Join(lines, "\n"))
		}
		if !strings.HasSuffix(l, " hello") {
			t.Fatalf("stamp ran without the app's environment (GREETING): %q", l)
		}
	}
	load.check(t, "schedules and a rollout")

	// Forbid: the 5 s job due every 2 s never overlapped on any node.
	for _, n := range nodes {
		out, _ := testnodes.Exec(t, n.Name, "cat /var/lib/bakery-apps/hello/data/overlap.log")
		runs := 0
		var prev string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			kind, _, _ := strings.Cut(l, " ")
			if kind == prev {
				t.Fatalf("%s: runs of a Forbid schedule overlapped (two %ss in a row):\n%s", n.Name, kind, out)
			}
			prev = kind
			if kind == "end" {
				runs++
			}
		}
		if runs < 1 {
			t.Fatalf("%s: overlap never finished a run:\n%s", n.Name, out)
		}
		t.Logf("%s: %d runs of the 5 s job due every 2 s, none overlapping", n.Name, runs)
	}

	// Allow: runs overlapped (a start follows a start), and they finish.
	out, _ := testnodes.Exec(t, nodes[0].Name, "cat /var/lib/bakery-apps/hello/data/parallel.log")
	if kinds := strings.Join(strings.Fields(regexpDigits.ReplaceAllString(out, "")), " "); !strings.Contains(kinds, "start start") || !strings.Contains(kinds, "end") {
		t.Fatalf("runs of an Allow schedule did not overlap or never ended:\n%s", out)
	}

	// A schedule dropped from the spec is removed from every node.
	cur := getDeployment(t, st)
	cur.Spec.Schedules = cur.Spec.Schedules[:1]
	cur.Metadata.ResourceVersion = ""
	if _, err := st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "overlap, flaky and parallel removed", func() bool {
		for _, n := range nodes {
			if out, _ := testnodes.Exec(t, n.Name, "ls /etc/systemd/system/"); strings.Contains(out, "sched-overlap") || strings.Contains(out, "sched-flaky") || strings.Contains(out, "sched-parallel") {
				return false
			}
		}
		return true
	})

	// Deleting the app removes its timers: no unit file left.
	cur = getDeployment(t, st)
	cur.Metadata.Annotations = map[string]string{api.AnnotationDeletionRequested: "now"}
	cur.Metadata.ResourceVersion = ""
	if _, err := st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "hello deleted", func() bool {
		_, err := st.Get(ctx, api.KindDeployment, "hello")
		return errors.Is(err, store.ErrNotFound)
	})
	for _, n := range nodes {
		out, _ := testnodes.Exec(t, n.Name, "ls /etc/systemd/system/; systemctl list-units --all --no-legend 'bakery-hello*'")
		if strings.Contains(out, "bakery-hello-") {
			t.Errorf("%s: hello's units left behind:\n%s", n.Name, out)
		}
	}
}

// countEvents counts the ScheduleFailed events of Deployment/hello whose
// message contains what.
func countEvents(t *testing.T, st deployment.Store, what string) int {
	t.Helper()
	evs, err := st.(store.Events).ListEvents(t.Context(), "Deployment/hello", 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == api.EventScheduleFailed && strings.Contains(e.Message, what) {
			n++
		}
	}
	return n
}

// TestE2EDockerSchedules: a docker app's schedule is a `docker run --rm`
// of the active image with the app's environment, on every node; it
// switches image with the web container, under continuous requests, and
// leaves no unit or container behind when the app is deleted.
func TestE2EDockerSchedules(t *testing.T) {
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
		testnodes.SSH(t, n, `h=/usr/local/lib/bakery/bakery-sudo; sudo -n $h sched-remove dhello >/dev/null 2>&1
for s in blue green; do docker rm -f bakery-dhello-$s; done >/dev/null 2>&1
imgs=$(docker image ls -q bakery/dhello); [ -z "$imgs" ] || docker image rm -f $imgs >/dev/null
sudo -n $h nginx-site-remove dhello && sudo -n $h nginx-reload; rm -rf /var/lib/bakery/apps/dhello`)
	}
	key := labKey(t, lab)
	mgr, _ := runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute})

	d := dockerDeployment(repo, names...)
	d.Spec.Schedules = []api.Schedule{{Name: "stamp", Schedule: "*:*:0/5", Node: api.ScheduleNodeAll,
		Command: `echo "stamp image $(cat /VERSION) release $BAKERY_RELEASE greeting $GREETING"`}}
	d.Default()
	c1 := commit("v1", map[string]string{"CHANGES": "v1\n"})
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitDockerDeployment(t, st, "first docker rollout Ready", 3*time.Minute, dockerReadyAt(c1))
	load := startLoadAs(nodes, dockerHost)
	logs := func() string {
		var b strings.Builder
		var mu sync.Mutex
		if err := mgr.RuntimeLogs(ctx, dockerApp, api.RuntimeLogRequest{Lines: 400, Schedule: "stamp"}, func(l api.RuntimeLogLine) {
			mu.Lock()
			b.WriteString(l.Node + " " + l.Text + "\n")
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	ranIn := func(c string) func() bool {
		return func() bool {
			out := logs()
			for _, n := range names {
				if !strings.Contains(out, n+" ") || !strings.Contains(out, "stamp image "+c[:12]+" release "+c) {
					return false
				}
			}
			return strings.Contains(out, "greeting hello")
		}
	}
	waitFor(t, time.Minute, "stamp ran in c1's image on both nodes", ranIn(c1))
	waitDockerDeployment(t, st, "stamp reported", time.Minute, func(d *api.Deployment) bool {
		s := schedFor(d, "stamp")
		return s != nil && len(s.Nodes) == 2 && s.Result == "succeeded" && s.NextRun != nil
	})
	c2 := commit("v2", map[string]string{"CHANGES": "v2\n"})
	waitDockerDeployment(t, st, "second docker rollout Ready", 3*time.Minute, dockerReadyAt(c2))
	waitFor(t, time.Minute, "stamp ran in c2's image on both nodes", ranIn(c2))
	load.check(t, "a docker rollout with a schedule")

	cur, err := st.Get(ctx, api.KindDeployment, dockerApp)
	if err != nil {
		t.Fatal(err)
	}
	dd := cur.(*api.Deployment)
	dd.Metadata.Annotations = map[string]string{api.AnnotationDeletionRequested: "now"}
	dd.Metadata.ResourceVersion = ""
	if _, err := st.Update(ctx, dd); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "dhello deleted", func() bool {
		_, err := st.Get(ctx, api.KindDeployment, dockerApp)
		return errors.Is(err, store.ErrNotFound)
	})
	for _, n := range nodes {
		out, _ := testnodes.Exec(t, n.Name, "ls /etc/systemd/system/; docker ps -a --format '{{.Names}}'")
		if strings.Contains(out, "bakery-dhello") {
			t.Errorf("%s: dhello's units or containers left behind:\n%s", n.Name, out)
		}
	}
}

// countSteps counts a rollout's steps of one kind.
func countSteps(ro *api.Rollout, kind string) int {
	n := 0
	for _, nd := range ro.Nodes {
		for _, s := range nd.Steps {
			if k, _, _ := strings.Cut(s.Name, " "); k == kind {
				n++
			}
		}
	}
	return n
}

var regexpDigits = regexp.MustCompile(`[0-9]+`)
