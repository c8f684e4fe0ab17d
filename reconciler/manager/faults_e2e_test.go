//go:build e2e

package manager

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/scripts/testnodes"
)

// Issue 17: infrastructure failures (a node powered off, sshd stopped, a
// full disk) are not a verdict on the revision: the rollout waits for the
// node, the other nodes go on, status and READY tell the truth while it
// is out, and the fleet converges without any command once it is back.

// faultsTimings are the control loop's timings in these tests: the
// deployment waits at most faultsMaxBackoff between retries, and a node
// that is back is picked up within one faultsResync.
const (
	faultsResync     = 5 * time.Second
	faultsMaxBackoff = 2 * time.Second
)

// faultsEnv is one test's control loop on its own store, with a
// deployment of the hello example on its own app name and host.
type faultsEnv struct {
	t      *testing.T
	st     deployment.Store
	mgr    *Manager
	app    string
	host   string
	nodes  []testnodes.Node
	commit func(msg string, files map[string]string) string
	repo   string
}

// startFaults cleans app off the nodes, writes them as Nodes and runs a
// Manager with short timings (logger: nil for the default).
func startFaults(t *testing.T, app string, nodes []testnodes.Node, logger *slog.Logger) *faultsEnv {
	t.Helper()
	lab := testnodes.Require(t)
	e := &faultsEnv{t: t, st: testenv.FileStore(t).(deployment.Store), app: app, host: app + ".example.test", nodes: nodes}
	e.repo, e.commit = exampleRepo(t)
	for _, n := range nodes {
		testnodes.SSH(t, n, fmt.Sprintf(`h=/usr/local/lib/bakery/bakery-sudo
for s in blue green; do sudo -n $h systemctl disable %[1]s $s; sudo -n $h systemctl stop %[1]s $s; sudo -n $h unit-remove %[1]s $s; done
sudo -n $h nginx-site-remove %[1]s; rm -rf /var/lib/bakery/apps/%[1]s/* /var/lib/bakery/apps/%[1]s/.[!.]* 2>/dev/null
sudo -n $h daemon-reload; sudo -n $h nginx-reload; true`, app))
		nn := labNode(n.Name, n.Address)
		nn.Spec.HostKey = n.HostKey
		if _, err := e.st.Create(t.Context(), nn); err != nil {
			t.Fatal(err)
		}
	}
	key := labKey(t, lab)
	e.mgr, _ = runManager(t, Config{Store: e.st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: faultsResync, BaseBackoff: 200 * time.Millisecond, MaxBackoff: faultsMaxBackoff,
		StepTimeout: time.Minute, Logger: logger})
	return e
}

// deploy creates the deployment on every node of the env.
func (e *faultsEnv) deploy(progressDeadline time.Duration) {
	e.t.Helper()
	var names []string
	for _, n := range e.nodes {
		names = append(names, n.Name)
	}
	d := helloDeployment(e.repo, names...)
	d.Metadata.Name = e.app
	d.Spec.Ingress.Hosts = []string{e.host}
	d.Spec.ProgressDeadline = &api.Duration{Duration: progressDeadline}
	if _, err := e.st.Create(e.t.Context(), d); err != nil {
		e.t.Fatal(err)
	}
}

func (e *faultsEnv) get() *api.Deployment {
	e.t.Helper()
	return getNamed(e.t, e.st, e.app)
}

func (e *faultsEnv) wait(what string, timeout time.Duration, cond func(d *api.Deployment) bool) *api.Deployment {
	e.t.Helper()
	return waitNamed(e.t, e.st, e.app, what, timeout, cond)
}

// serves reports whether every given node serves commit through nginx.
func (e *faultsEnv) serves(commit string, nodes ...testnodes.Node) bool {
	c := &http.Client{Timeout: 3 * time.Second}
	for _, n := range nodes {
		body, err := getAs(c, n.Address, e.host)
		if err != nil || !strings.HasPrefix(body, "hello from "+commit[:12]) {
			return false
		}
	}
	return true
}

// push commits a new version and wakes the deployment (as the webhook
// does); it returns the commit.
func (e *faultsEnv) push(msg string) string {
	c := e.commit(msg, map[string]string{"CHANGES": msg + "\n"})
	e.mgr.EnqueueKey(api.KindDeployment + "/" + e.app)
	return c
}

// stepStarted reports whether the current rollout of commit started a
// step of kind (build, switch, …) on node.
func (e *faultsEnv) stepStarted(commit, node, kind string) bool {
	d := e.get()
	if d.Status.CurrentRollout == nil {
		return false
	}
	ro, err := e.st.GetRollout(e.t.Context(), d.Status.CurrentRollout.ID)
	if err != nil || ro.Commit != commit {
		return false
	}
	for _, n := range ro.Nodes {
		for _, s := range n.Steps {
			if n.Node == node && strings.HasPrefix(s.Name, kind) {
				return true
			}
		}
	}
	return false
}

// ready is `bakery get deployments`' READY.
func ready(d *api.Deployment) string {
	n, total := d.ReadyNodes()
	return fmt.Sprintf("%d/%d", n, total)
}

// waitingFor reports whether the deployment waits for node with the given
// Progressing reason, and has recorded no failed attempt.
func waitingFor(node, reason string) func(d *api.Deployment) bool {
	return func(d *api.Deployment) bool {
		s, r := condStatus(d, api.ConditionProgressing)
		return d.Status.Waiting != nil && len(d.Status.Waiting.Nodes) == 1 && d.Status.Waiting.Nodes[0] == node &&
			s == api.ConditionTrue && r == reason
	}
}

// checkWaiting checks what the status says while node is out, logs it,
// and returns the deployment.
func (e *faultsEnv) checkWaiting(node, reason, wantReady string) *api.Deployment {
	e.t.Helper()
	d := e.checkWaitingQuiet(node, reason, wantReady)
	var msg string
	for _, ns := range d.Status.Nodes {
		if ns.Node == node {
			msg = ns.Message
		}
	}
	e.t.Logf("while %s is out: READY %s; Progressing %s: %s; status.nodes[%s].message %q", node, ready(d), reason,
		api.FindCondition(d.Status.Conditions, api.ConditionProgressing).Message, node, msg)
	return d
}

func (e *faultsEnv) checkWaitingQuiet(node, reason, wantReady string) *api.Deployment {
	e.t.Helper()
	d := e.wait("waiting for "+node, time.Minute, waitingFor(node, reason))
	if d.Status.FailedAttempt != nil {
		e.t.Fatalf("an infrastructure failure recorded a failed attempt: %+v", d.Status.FailedAttempt)
	}
	if s, r := condStatus(d, api.ConditionDegraded); s == api.ConditionTrue {
		e.t.Fatalf("Degraded (%s) before the progress deadline", r)
	}
	if s, _ := condStatus(d, api.ConditionReady); s != api.ConditionFalse {
		e.t.Fatalf("Ready=%s while a node is out", s)
	}
	if got := ready(d); got != wantReady {
		e.t.Fatalf("READY %s while %s is out, want %s; nodes %+v", got, node, wantReady, d.Status.Nodes)
	}
	return d
}

// converge waits until every node serves commit and the deployment is
// Ready at it, and returns how long that took.
func (e *faultsEnv) converge(commit string, timeout time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	d := e.wait("converged at "+commit[:7], timeout, func(d *api.Deployment) bool {
		return readyAt(commit)(d) && d.Status.Waiting == nil && e.serves(commit, e.nodes...)
	})
	if got := ready(d); got != fmt.Sprintf("%d/%d", len(e.nodes), len(e.nodes)) {
		e.t.Fatalf("READY %s after converging", got)
	}
	return time.Since(start)
}

// outage is how a test takes the node out and brings it back.
type outage struct {
	name       string
	out, back  func(t *testing.T, e *faultsEnv, n testnodes.Node)
	reason     string
	loadOnNode bool // the node's nginx keeps serving while it is out
}

// TestE2EFaultNodePowerOff: a 3-node rollout of a new commit; the third
// node is powered off while the first two prepare. The other two switch
// (one node does not hold the others back), the deployment waits for the
// third (Progressing WaitingForNode, READY 2/3, no failed attempt, not
// Degraded), and once it is started again the rollout finishes on it
// without any command, within one resync; no request through the nodes
// that stayed up failed.
func TestE2EFaultNodePowerOff(t *testing.T) {
	t.Parallel()
	testOutage(t, outage{name: "power-off", reason: deployment.ReasonWaitingForNode,
		out:  func(t *testing.T, e *faultsEnv, n testnodes.Node) { testnodes.Stop(t, n.Name) },
		back: func(t *testing.T, e *faultsEnv, n testnodes.Node) { testnodes.Start(t, n.Name) },
	})
}

// TestE2EFaultSSHDown: the same with sshd stopped on the node (and the
// control plane's connection to it dropped) instead of a power-off: its
// nginx keeps serving, so the load goes through all three nodes.
func TestE2EFaultSSHDown(t *testing.T) {
	t.Parallel()
	testOutage(t, outage{name: "sshd stopped", reason: deployment.ReasonWaitingForNode, loadOnNode: true,
		out: func(t *testing.T, e *faultsEnv, n testnodes.Node) {
			if out, err := testnodes.Exec(t, n.Name, "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh"); err != nil {
				t.Fatalf("stopping sshd: %v\n%s", err, out)
			}
			// Stopping sshd leaves established sessions; drop the control
			// plane's connection as a network failure would.
			o, err := e.st.Get(t.Context(), api.KindNode, n.Name)
			if err != nil {
				t.Fatal(err)
			}
			e.mgr.connector().Forget(o.(*api.Node), nil)
		},
		back: func(t *testing.T, e *faultsEnv, n testnodes.Node) {
			if out, err := testnodes.Exec(t, n.Name, "systemctl start ssh"); err != nil {
				t.Fatalf("starting sshd: %v\n%s", err, out)
			}
		},
	})
}

func testOutage(t *testing.T, o outage) {
	shared := testnodes.RequireNodes(t, 3)[:2]
	scratch := testnodes.Scratch(t)
	app := "faults-" + strings.ReplaceAll(o.name, " ", "-")
	app = strings.ReplaceAll(app, "sshd-stopped", "ssh")
	e := startFaults(t, app, append(append([]testnodes.Node{}, shared...), scratch), nil)
	c1 := e.commit("v1", map[string]string{"CHANGES": "v1\n"})
	// Two nodes prepare at once (issue 18: maxParallel): the third (the
	// scratch node, last by name) starts preparing only when one of the
	// others has, so that it is taken out between two steps, before its
	// first one, rather than in the middle of one.
	e.deployWith(func(s *api.DeploymentSpec) {
		s.ProgressDeadline = &api.Duration{Duration: 5 * time.Minute}
		s.Strategy.MaxParallel = 2
	})
	e.wait("first rollout Ready", 3*time.Minute, readyAt(c1))

	up := shared
	if o.loadOnNode {
		up = e.nodes
	}
	l := startLoadAs(up, e.host)
	// v2 builds for 5 s: the time the node has to go out in.
	build := mustRead(t, e.repo+"/build.js") + "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5000);\n"
	c2 := e.commit("v2", map[string]string{"CHANGES": "v2\n", "build.js": build})
	e.mgr.EnqueueKey(api.KindDeployment + "/" + e.app)
	e.wait(shared[0].Name+" building v2", 2*time.Minute, func(*api.Deployment) bool { return e.stepStarted(c2, shared[0].Name, "build") })
	o.out(t, e, scratch)
	outAt := time.Now()
	t.Logf("%s: %s out while %s built v2", o.name, scratch.Name, shared[0].Name)

	// The node that stayed up switches too; the deployment waits for the
	// one that is out and says so, for as long as it is out.
	d := e.checkWaiting(scratch.Name, o.reason, "2/3")
	if !e.serves(c2, shared...) || d.Status.Commit != c2 {
		t.Fatalf("the nodes that stayed up do not serve v2 (status commit %s)", d.Status.Commit)
	}
	waitingRollout := d.Status.Waiting.Rollout
	// The status stays true for as long as the node is out (12 s here).
	for time.Since(outAt) < 12*time.Second {
		time.Sleep(time.Second)
		e.checkWaitingQuiet(scratch.Name, o.reason, "2/3")
	}
	e.checkWaiting(scratch.Name, o.reason, "2/3")

	o.back(t, e, scratch)
	backAt := time.Now()
	took := e.converge(c2, 2*time.Minute)
	// When the rollout went on on the node: its first step after its return.
	var resumed time.Duration
	if ro, err := e.st.GetRollout(t.Context(), waitingRollout); err == nil {
		for _, n := range ro.Nodes {
			for _, s := range n.Steps {
				if n.Node == scratch.Name && s.Start != nil && !s.Start.Time.Before(backAt.Truncate(time.Second)) && resumed == 0 {
					resumed = s.Start.Time.Sub(backAt)
				}
			}
		}
	}
	t.Logf("%s: %s back; the rollout went on there %v and converged on every node %v after its return (resync %v, max backoff %v)", o.name, scratch.Name,
		resumed.Round(100*time.Millisecond), took.Round(100*time.Millisecond), faultsResync, faultsMaxBackoff)
	if resumed > faultsResync {
		t.Errorf("the rollout went on %v after the node's return, more than one resync (%v)", resumed, faultsResync)
	}
	d = e.get()
	if d.Status.CurrentRollout.ID != waitingRollout || d.Status.CurrentRollout.State != api.RolloutSucceeded {
		t.Errorf("the rollout that waited (%s) did not finish it: current %+v", waitingRollout, d.Status.CurrentRollout)
	}
	ro, err := e.st.GetRollout(t.Context(), waitingRollout)
	if err != nil || ro.State != api.RolloutSucceeded {
		t.Errorf("rollout %s: %+v, %v; want succeeded", waitingRollout, ro, err)
	}
	l.check(t, o.name)
	// Within one resync of the node's return (its own rollout steps —
	// fetch, build, health, switch — take a few seconds more).
	if took > faultsResync+30*time.Second {
		t.Errorf("converged %v after the node's return", took)
	}
}

// TestE2EFaultDiskFull: the app's directory on one node is a small
// tmpfs, filled up after the first rollout. A new commit: the other node
// switches, the full node is waited for with reason NodeDiskFull and the
// node's own error (No space left on device, not an empty "exit status
// 125:"), no failed attempt; once space is freed the fleet converges with
// no command.
func TestE2EFaultDiskFull(t *testing.T) {
	t.Parallel()
	shared := testnodes.RequireNodes(t, 1)[0]
	scratch := testnodes.Scratch(t)
	const app = "faults-disk"
	dir := nf.AppDir(app)
	if out, err := testnodes.Exec(t, scratch.Name, fmt.Sprintf("mkdir -p %[1]s && mount -t tmpfs -o size=24m,mode=755,uid=$(id -u bakery-agent),gid=$(id -g bakery-agent) bakery-faults %[1]s", dir)); err != nil {
		t.Fatalf("mounting a tmpfs over %s: %v\n%s", dir, err, out)
	}
	e := startFaults(t, app, []testnodes.Node{shared, scratch}, nil)
	c1 := e.commit("v1", map[string]string{"CHANGES": "v1\n"})
	e.deploy(5 * time.Minute)
	e.wait("first rollout Ready", 3*time.Minute, readyAt(c1))

	if out, err := testnodes.Exec(t, scratch.Name, "dd if=/dev/zero of="+dir+"/fill bs=1M 2>&1; df -h "+dir); !strings.Contains(out, "No space left") {
		t.Fatalf("filling %s: %v\n%s", dir, err, out)
	}
	l := startLoadAs(e.nodes, e.host)
	c2 := e.push("v2")
	d := e.checkWaiting(scratch.Name, deployment.ReasonNodeDiskFull, "1/2")
	if msg := d.Status.Waiting.Message; !strings.Contains(msg, "disk full") || !strings.Contains(msg, "No space left on device") {
		t.Fatalf("the wait does not name the full disk: %q", msg)
	}
	if !e.serves(c2, shared) || !e.serves(c1, scratch) {
		t.Fatal("want v2 on the node with space and v1 still serving on the full one")
	}

	if out, err := testnodes.Exec(t, scratch.Name, "rm -f "+dir+"/fill"); err != nil {
		t.Fatalf("freeing %s: %v\n%s", dir, err, out)
	}
	took := e.converge(c2, 2*time.Minute)
	t.Logf("disk full: converged %v after space was freed (max backoff %v)", took.Round(100*time.Millisecond), faultsMaxBackoff)
	l.check(t, "disk full")
	if took > faultsMaxBackoff+30*time.Second {
		t.Errorf("converged %v after space was freed", took)
	}
}

// retryLog records when the controller retried a key after a failure.
type retryLog struct {
	slog.Handler
	key string
	mu  sync.Mutex
	at  []time.Time
}

func (h *retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *retryLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "reconcile failed; retrying with backoff" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "key" && a.Value.String() == h.key {
			h.mu.Lock()
			h.at = append(h.at, r.Time)
			h.mu.Unlock()
		}
		return true
	})
	return nil
}
func (h *retryLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *retryLog) WithGroup(string) slog.Handler      { return h }

// TestE2EFaultBackoffCap: a deployment whose only node refuses
// connections is retried at least once per max backoff (1 s here, the
// resync being a minute), waits with reason WaitingForNode, records no
// failed attempt, and turns Degraded once its progress deadline passed.
func TestE2EFaultBackoffCap(t *testing.T) {
	t.Parallel()
	n := testnodes.RequireNodes(t, 1)[0]
	lab := testnodes.Require(t)
	st := testenv.FileStore(t).(deployment.Store)
	ghost := labNode("ghost", n.Address)
	ghost.Spec.Port = 1 // nothing listens: connection refused
	if _, err := st.Create(t.Context(), ghost); err != nil {
		t.Fatal(err)
	}
	key := labKey(t, lab)
	const maxBackoff = time.Second
	h := &retryLog{key: api.KindDeployment + "/faults-backoff"}
	runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: time.Minute, BaseBackoff: 100 * time.Millisecond, MaxBackoff: maxBackoff, Logger: slog.New(h)})
	repo, _ := exampleRepo(t)
	d := helloDeployment(repo, "ghost")
	d.Metadata.Name = "faults-backoff"
	d.Spec.Ingress.Hosts = []string{"faults-backoff.example.test"}
	d.Spec.ProgressDeadline = &api.Duration{Duration: 3 * time.Second}
	if _, err := st.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	got := waitNamed(t, st, "faults-backoff", "waiting for ghost", 30*time.Second, waitingFor("ghost", deployment.ReasonWaitingForNode))
	t.Logf("waiting: %s", got.Status.Waiting.Message)
	got = waitNamed(t, st, "faults-backoff", "Degraded after the progress deadline", 30*time.Second, func(d *api.Deployment) bool {
		s, r := condStatus(d, api.ConditionDegraded)
		return s == api.ConditionTrue && r == deployment.ReasonDeadlineExceeded
	})
	if got.Status.FailedAttempt != nil || got.Status.Waiting == nil {
		t.Fatalf("after the deadline: failedAttempt %+v, waiting %+v; want none and still waiting", got.Status.FailedAttempt, got.Status.Waiting)
	}
	start := time.Now()
	testenv.Eventually(t, "12 retries", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.at) >= 12 })
	h.mu.Lock()
	defer h.mu.Unlock()
	var longest time.Duration
	for i := 1; i < len(h.at); i++ {
		longest = max(longest, h.at[i].Sub(h.at[i-1]))
	}
	t.Logf("%d retries; longest gap between two %v (max backoff %v, resync 1m); 12 retries took %v", len(h.at), longest, maxBackoff, time.Since(start))
	// The gap is the backoff plus the reconcile itself (a refused dial).
	if longest > maxBackoff+time.Second {
		t.Fatalf("longest gap between retries %v, want at most the max backoff %v (+ the reconcile)", longest, maxBackoff)
	}
}
