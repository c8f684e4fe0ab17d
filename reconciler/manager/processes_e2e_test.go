//go:build e2e

package manager

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/scripts/testnodes"
)

// jobWorker is a worker that takes 3 s per job. It appends to
// jobs-APP.log in the app's data directory "start N REL PID" when a job
// starts and "done N REL PID" when it ends (REL: the first 12 characters
// of its release, the commit), "term REL PID" when it gets SIGTERM; after
// SIGTERM it finishes the job in hand, writes "exit REL PID" and exits 0.
const jobWorker = `import os, signal, sys, time
app = sys.argv[1]
log = "/var/lib/bakery-apps/%s/data/jobs-%s.log" % (app, os.environ.get("BAKERY_PROCESS", "?"))
rel = os.path.basename(os.getcwd())[:12]
pid = os.getpid()
def w(line):
    with open(log, "a") as f:
        f.write("%s %s %d\n" % (line, rel, pid))
stop = False
def term(*_):
    global stop
    stop = True
    w("term")
signal.signal(signal.SIGTERM, term)
n = 0
while not stop:
    n += 1
    w("start %d" % n)
    time.sleep(3)
    w("done %d" % n)
w("exit")
`

// workerHealth passes once a worker of this release (the check runs in
// the release directory) wrote a line.
const workerHealth = `grep -q " $(basename "$PWD" | cut -c1-12) " /var/lib/bakery-apps/hello/data/jobs-worker.log`

// procEnv is a manager on three lab nodes.
type procEnv struct {
	t      *testing.T
	st     deployment.Store
	mgr    *Manager
	nodes  []testnodes.Node
	repo   string
	commit func(msg string, files map[string]string) string
}

func startProcEnv(t *testing.T) *procEnv {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 3)
	st := testenv.FileStore(t).(deployment.Store)
	repo, commit := exampleRepo(t)
	createLabNodes(t, st, nodes)
	key := labKey(t, lab)
	mgr, _ := runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute})
	return &procEnv{t: t, st: st, mgr: mgr, nodes: nodes, repo: repo, commit: commit}
}

// cleanApp removes what an earlier run left of app on the nodes.
func (e *procEnv) cleanApp(app string) {
	for _, n := range e.nodes {
		testnodes.Exec(e.t, n.Name, fmt.Sprintf(`h=/usr/local/lib/bakery/bakery-sudo
for s in blue green; do $h proc-remove %[1]s $s; $h systemctl disable %[1]s $s; $h systemctl stop %[1]s $s; $h unit-remove %[1]s $s; done
$h nginx-site-remove %[1]s; rm -rf /var/lib/bakery/apps/%[1]s /var/lib/bakery-apps/%[1]s/data/jobs-*.log
$h daemon-reload; $h nginx-reload`, app))
	}
}

func (e *procEnv) get(app string) *api.Deployment {
	e.t.Helper()
	o, err := e.st.Get(e.t.Context(), api.KindDeployment, app)
	if err != nil {
		e.t.Fatal(err)
	}
	return o.(*api.Deployment)
}

func (e *procEnv) wait(app, what string, timeout time.Duration, cond func(d *api.Deployment) bool) *api.Deployment {
	e.t.Helper()
	var d *api.Deployment
	waitFor(e.t, timeout, what, func() bool {
		d = e.get(app)
		return cond(d)
	})
	return d
}

// procsReady: the deployment is Ready at commit and every node runs the
// wanted instances of every process.
func procsReady(commit string) func(d *api.Deployment) bool {
	return func(d *api.Deployment) bool {
		if !readyAt(commit)(d) || len(d.Status.Nodes) == 0 {
			return false
		}
		for _, n := range d.Status.Nodes {
			if len(n.Processes) != len(d.Spec.Processes) {
				return false
			}
			for _, p := range n.Processes {
				if p.Running != p.Replicas {
					return false
				}
			}
		}
		return true
	}
}

// jobLog reads a worker's job log on a node.
func (e *procEnv) jobLog(n testnodes.Node, app string) []string {
	e.t.Helper()
	out, err := testnodes.Exec(e.t, n.Name, "cat /var/lib/bakery-apps/"+app+"/data/jobs-worker.log")
	if err != nil {
		e.t.Fatalf("%s: %v", n.Name, err)
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}

// checkHandover checks a job log across a switch from release old to
// release new: the old worker got SIGTERM, finished the job it had started
// (a "done" after its last "start"), started no job after SIGTERM and
// exited; a worker of the new release started jobs.
func checkHandover(t *testing.T, node string, lines []string, old, new string) {
	t.Helper()
	var termAt, lastStart, doneAfter, newStart, exitAt = -1, -1, -1, -1, -1
	var oldPID, lastN string
	for i, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 4 && f[0] == "start" && f[2] == old:
			lastStart, oldPID, lastN = i, f[3], f[1]
			if termAt >= 0 && f[3] == oldPID {
				t.Fatalf("%s: the old worker started a job after SIGTERM:\n%s", node, strings.Join(lines, "\n"))
			}
		case len(f) == 4 && f[0] == "done" && f[2] == old && f[1] == lastN && f[3] == oldPID:
			doneAfter = i
		case len(f) == 3 && f[0] == "term" && f[1] == old:
			termAt = i
		case len(f) == 3 && f[0] == "exit" && f[1] == old:
			exitAt = i
		case len(f) == 4 && f[0] == "start" && f[2] == new && newStart < 0:
			newStart = i
		}
	}
	if termAt < 0 || lastStart < 0 || doneAfter < lastStart || exitAt < doneAfter || newStart < 0 {
		t.Fatalf("%s: no clean handover from %s to %s (term %d, last start %d, its done %d, exit %d, new start %d):\n%s",
			node, old, new, termAt, lastStart, doneAfter, exitAt, newStart, strings.Join(lines, "\n"))
	}
}

// TestE2EProcesses, on three nodes under continuous requests through
// every node's nginx: a web app with a worker (3 s per job, health
// checked with exec) rolls out; on a new revision each node's old worker
// receives SIGTERM after the new one started from the new release and
// passed its health check, finishes its job and exits; a worker stopped
// behind Bakery's back (systemctl kill: SIGTERM, a clean exit systemd does
// not restart) is restarted at resync; replicas 2 converge without a
// rollout; the worker's runtime log is readable per process. No request
// fails throughout.
func TestE2EProcesses(t *testing.T) {
	e := startProcEnv(t)
	ctx := t.Context()
	e.cleanApp("hello")
	t.Cleanup(func() { e.cleanApp("hello") }) // other tests deploy hello without processes
	// The baseline: a rollout of a new commit without a worker.
	c0 := e.commit("worker", map[string]string{"worker.py": jobWorker})
	d := helloDeployment(e.repo, e.nodes[0].Name, e.nodes[1].Name, e.nodes[2].Name)
	if _, err := e.st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.wait("hello", "first rollout", 3*time.Minute, readyAt(c0))
	c1 := e.commit("v1", map[string]string{"CHANGES": "v1\n"})
	t0 := time.Now()
	d = e.wait("hello", "v1 without a worker", 3*time.Minute, readyAt(c1))
	t.Logf("rollout of v1 without a worker (the baseline): %v", time.Since(t0))
	per, _ := stepTimes(t, e.st, d.Status.CurrentRollout.ID)
	logStepTimes(t, "v1 without a worker", per, 3)

	d.Spec.Processes = []api.Process{{Name: "worker", Command: "exec python3 worker.py hello", StopTimeout: &api.Duration{Duration: 20 * time.Second},
		HealthCheck: &api.ProcessHealthCheck{Exec: workerHealth}}}
	d.Default()
	if _, err := e.st.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	d = e.wait("hello", "the worker added", 3*time.Minute, procsReady(c1))
	t.Logf("rollout adding a worker on 3 nodes: %v", time.Since(t0))
	for _, ns := range d.Status.Nodes {
		if p := ns.Processes[0]; p.Name != "worker" || p.Revision != d.Status.Revision {
			t.Fatalf("%s: processes %+v", ns.Node, ns.Processes)
		}
	}

	load := startLoad(e.nodes)
	time.Sleep(4 * time.Second) // the first worker is inside a job
	c2 := e.commit("v2", map[string]string{"CHANGES": "v2\n"})
	t0 = time.Now()
	d = e.wait("hello", "v2 with its worker", 3*time.Minute, procsReady(c2))
	t.Logf("rollout of v2 with a worker handover: %v", time.Since(t0))
	per, _ = stepTimes(t, e.st, d.Status.CurrentRollout.ID)
	logStepTimes(t, "v2 with a worker", per, 3)
	t.Logf("switching workers, summed over 3 nodes (ms): start of the new ones with health check %d, stop of the old ones %d",
		per["processes"], per["stop-processes"])
	for _, n := range e.nodes {
		checkHandover(t, n.Name, e.jobLog(n, "hello"), c1[:12], c2[:12])
	}

	// Drift: node 1's worker stopped behind Bakery's back (SIGTERM: it
	// finishes its job and exits 0, so systemd does not restart it).
	n1 := e.nodes[0]
	slot := d.Status.Nodes[0].ActiveSlot
	unit := fmt.Sprintf("bakery-hello-%s-worker@1.service", slot)
	if _, err := testnodes.Exec(t, n1.Name, "systemctl kill "+unit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the killed worker exits", func() bool {
		out, _ := testnodes.Exec(t, n1.Name, "systemctl is-active "+unit+" || true")
		return strings.TrimSpace(out) != "active" && strings.TrimSpace(out) != "deactivating"
	})
	t0 = time.Now()
	waitFor(t, time.Minute, "the resync restarts the worker", func() bool {
		out, _ := testnodes.Exec(t, n1.Name, "systemctl is-active "+unit+" || true")
		return strings.TrimSpace(out) == "active"
	})
	t.Logf("the killed worker ran again %v after it exited", time.Since(t0))

	// Replicas 2: converges without a rollout (same revision).
	cur := e.get("hello")
	rev := cur.Status.Revision
	cur.Spec.Processes[0].Replicas = 2
	if _, err := e.st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	d = e.wait("hello", "two workers per node", 2*time.Minute, func(d *api.Deployment) bool {
		return d.Status.ObservedGeneration == d.Metadata.Generation && procsReady(c2)(d) && d.Status.Nodes[0].Processes[0].Running == 2
	})
	if d.Status.Revision != rev {
		t.Fatalf("replicas 2 made revision %d (was %d): want no rollout", d.Status.Revision, rev)
	}
	for _, n := range e.nodes {
		out, err := testnodes.Exec(t, n.Name, fmt.Sprintf("systemctl is-active bakery-hello-%s-worker@1 bakery-hello-%s-worker@2", slot, slot))
		if err != nil || strings.Count(out, "active") != 2 {
			t.Fatalf("%s: two workers: %q %v", n.Name, out, err)
		}
	}

	var logged strings.Builder
	if err := e.mgr.RuntimeLogs(ctx, "hello", api.RuntimeLogRequest{Lines: 50, Process: "worker", Node: n1.Name}, func(l api.RuntimeLogLine) {
		logged.WriteString(l.Text + "\n")
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "worker") {
		t.Fatalf("the worker's runtime log:\n%s", logged.String())
	}
	load.check(t, "a worker handover, a killed worker and replicas 2")
}

// TestE2EWorkerOnly: a deployment with a worker and no web process (no
// run.command, no ingress) rolls out (no nginx site, no port), rolls out
// a new commit, rolls back with rollout undo and is deleted cleanly: no
// unit file, site or app directory is left on the nodes.
func TestE2EWorkerOnly(t *testing.T) {
	e := startProcEnv(t)
	ctx := t.Context()
	const app = "jobs"
	e.cleanApp(app)
	c1 := e.commit("worker", map[string]string{"worker.py": jobWorker})
	d := helloDeployment(e.repo, e.nodes[0].Name, e.nodes[1].Name, e.nodes[2].Name)
	d.Metadata.Name = app
	d.Spec.Run.Command, d.Spec.Ingress = "", nil
	d.Spec.Processes = []api.Process{{Name: "worker", Command: "exec python3 worker.py " + app, StopTimeout: &api.Duration{Duration: 20 * time.Second}}}
	d.Default()
	if errs := d.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := e.st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	d = e.wait(app, "worker-only rollout", 3*time.Minute, procsReady(c1))
	t.Logf("worker-only first rollout on 3 nodes: %v", time.Since(t0))
	for _, ns := range d.Status.Nodes {
		if ns.Port != 0 || !ns.Healthy {
			t.Fatalf("%s: %+v", ns.Node, ns)
		}
	}
	for _, n := range e.nodes {
		if out, _ := testnodes.Exec(t, n.Name, "ls /etc/nginx/conf.d/ /etc/systemd/system/"); strings.Contains(out, "bakery-"+app+".conf") ||
			strings.Contains(out, "bakery-"+app+"-blue.service") || strings.Contains(out, "bakery-"+app+"-green.service") {
			t.Fatalf("%s: a worker-only app got a site or a web unit:\n%s", n.Name, out)
		}
	}

	time.Sleep(4 * time.Second)
	c2 := e.commit("v2", map[string]string{"CHANGES": "v2\n"})
	t0 = time.Now()
	d = e.wait(app, "worker-only v2", 3*time.Minute, procsReady(c2))
	t.Logf("worker-only rollout of v2: %v", time.Since(t0))
	per, _ := stepTimes(t, e.st, d.Status.CurrentRollout.ID)
	logStepTimes(t, "worker-only v2", per, 3)
	for _, n := range e.nodes {
		checkHandover(t, n.Name, e.jobLog(n, app), c1[:12], c2[:12])
	}

	time.Sleep(4 * time.Second)
	t0 = time.Now()
	if _, err := e.mgr.DeploymentAction(ctx, app, api.ActionRequest{Action: api.ActionRollback, By: "user:e2e"}); err != nil {
		t.Fatal(err)
	}
	e.wait(app, "worker-only rolled back to v1", 3*time.Minute, procsReady(c1))
	t.Logf("worker-only rollout undo: %v", time.Since(t0))
	for _, n := range e.nodes {
		checkHandover(t, n.Name, e.jobLog(n, app), c2[:12], c1[:12])
	}

	cur := e.get(app)
	cur.Metadata.Annotations = map[string]string{api.AnnotationDeletionRequested: "now"}
	cur.Metadata.ResourceVersion = ""
	if _, err := e.st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the worker-only deployment is deleted", func() bool {
		_, err := e.st.Get(ctx, api.KindDeployment, app)
		return errors.Is(err, store.ErrNotFound)
	})
	for _, n := range e.nodes {
		out, err := testnodes.Exec(t, n.Name, "ls /etc/systemd/system/ /etc/systemd/system/multi-user.target.wants/ /etc/nginx/conf.d/ /var/lib/bakery/apps/ /var/lib/bakery-apps/; systemctl list-units --all --plain --no-legend 'bakery-"+app+"-*'")
		if err != nil || strings.Contains(out, "bakery-"+app) || strings.Contains(out, "\n"+app+"\n") {
			t.Fatalf("%s: the worker-only app left things behind (%v):\n%s", n.Name, err, out)
		}
	}
}
