//go:build e2e

package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/scripts/testnodes"
)

// releaseCommand appends the release directory's name to a counter file
// in the app's data directory (one line per run), and fails with a message
// on stderr when the commit has a FAIL_RELEASE file (a broken migration).
const releaseCommand = `if [ -f FAIL_RELEASE ]; then echo "migration failed: column already exists" >&2; exit 3; fi
echo "migrating $(basename "$PWD") as $(id -un), greeting $GREETING, port ${PORT:-unset}"
basename "$PWD" >> /var/lib/bakery-apps/hello/data/releases.log
echo migrated`

// TestE2ERelease, on three nodes under continuous requests through every
// node's nginx: spec.release runs exactly once per rollout of a new
// revision (a counter in the app's data directory), on one node, before
// any node starts the new revision; a failing release command switches
// nothing (every node serves the old commit, Degraded/ReleaseFailed, its
// output in the rollout log); a rollback to a commit it ran for does not
// run it again; bakery exec returns a command's output and exit status,
// the app's secret is in its environment and nowhere in `ps` on the node
// or in the stored events. No request fails throughout.
func TestE2ERelease(t *testing.T) {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 3)
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	repo, commit := exampleRepo(t)
	createLabNodes(t, st, nodes)
	const h = "/usr/local/lib/bakery/bakery-sudo"
	cleanup := `for s in blue green; do sudo -n ` + h + ` systemctl disable hello $s; sudo -n ` + h + ` systemctl stop hello $s; sudo -n ` + h + ` unit-remove hello $s; sudo -n ` + h + ` env-remove hello $s; done
sudo -n ` + h + ` nginx-site-remove hello; rm -rf /var/lib/bakery/apps/hello; sudo -n ` + h + ` daemon-reload; sudo -n ` + h + ` nginx-reload; sudo -n ` + h + ` app-remove hello >/dev/null`
	for _, n := range nodes {
		testnodes.SSH(t, n, cleanup)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			testnodes.SSH(t, n, cleanup)
		}
	})
	kr, err := sealed.ParseKeyring(sealed.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	const secret = "canary-release-8c41e7d2"
	putSecret(t, st, kr, "hello-db", map[string]string{"DB_PASSWORD": secret})
	key := labKey(t, lab)
	mgr, _ := runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute, Keyring: kr})

	// exec runs a command through the manager (what the API's exec calls).
	exec := func(node string, argv ...string) (string, int) {
		t.Helper()
		var mu sync.Mutex
		var out strings.Builder
		_, code, err := mgr.Exec(ctx, "hello", api.ExecRequest{Command: argv, Node: node, By: "user:e2e"}, func(l api.ExecLine) {
			mu.Lock()
			defer mu.Unlock()
			out.WriteString(l.Stream + " " + l.Text + "\n")
		})
		if err != nil {
			t.Fatalf("exec %q on %q: %v", argv, node, err)
		}
		return out.String(), code
	}
	// runs counts the release command's runs on every node (the counter
	// file is the app's, 0700: read through exec).
	runs := func() map[string][]string {
		t.Helper()
		out := map[string][]string{}
		for _, n := range nodes {
			text, code := exec(n.Name, "cat /var/lib/bakery-apps/hello/data/releases.log 2>/dev/null || true")
			if code != 0 {
				t.Fatalf("reading the counter on %s: exit %d: %s", n.Name, code, text)
			}
			for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
				if l = strings.TrimPrefix(l, "stdout "); l != "" {
					out[n.Name] = append(out[n.Name], l)
				}
			}
		}
		return out
	}
	total := func(m map[string][]string) (n int) {
		for _, v := range m {
			n += len(v)
		}
		return n
	}
	rolloutOf := func(d *api.Deployment) *api.Rollout {
		t.Helper()
		ro, err := st.GetRollout(ctx, d.Status.CurrentRollout.ID)
		if err != nil {
			t.Fatal(err)
		}
		return ro
	}
	releaseStep := func(ro *api.Rollout) (node string, ms int64) {
		for _, n := range ro.Nodes {
			for _, s := range n.Steps {
				if s.Name == deployment.StepRelease {
					return n.Node, s.DurationMillis
				}
			}
		}
		return "", -1
	}
	prepareOf := func(ro *api.Rollout) int64 { // first step start to last health end
		var first, last time.Time
		for _, n := range ro.Nodes {
			for _, s := range n.Steps {
				if s.Start != nil && (first.IsZero() || s.Start.Time.Before(first)) {
					first = s.Start.Time
				}
				if strings.HasPrefix(s.Name, "switch") && s.End != nil && s.End.Time.After(last) {
					last = s.End.Time
				}
			}
		}
		return last.Sub(first).Milliseconds()
	}

	start := time.Now()
	c1 := commit("v1 with a migration", map[string]string{"CHANGES": "v1\n"})
	d := helloDeployment(repo, nodes[0].Name, nodes[1].Name, nodes[2].Name)
	d.Spec.Run.EnvFrom = []api.EnvFromSource{{SecretRef: "hello-db"}}
	d.Spec.Release = &api.Release{Command: releaseCommand, Timeout: &api.Duration{Duration: time.Minute}}
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	first := waitDeployment(t, st, "first rollout Ready", 4*time.Minute, readyAt(c1))
	ro1 := rolloutOf(first)
	t.Logf("first rollout on 3 nodes: %v", time.Since(start))
	if got := runs(); total(got) != 1 || len(got[nodes[0].Name]) != 1 {
		t.Fatalf("after the first rollout the release command ran %v, want once on %s", got, nodes[0].Name)
	}
	if rr := ro1.Release; rr == nil || rr.Result != api.ReleaseSucceeded || rr.Node != nodes[0].Name || rr.Commit != c1 {
		t.Fatalf("first rollout's release record: %+v", ro1.Release)
	}
	if rr := first.Status.Release; rr == nil || rr.Rollout != ro1.ID {
		t.Fatalf("status.release after the first rollout: %+v", first.Status.Release)
	}
	node, ms := releaseStep(ro1)
	t.Logf("release step on %s: %d ms (rollout prepare to last switch: %d ms)", node, ms, prepareOf(ro1))
	log1 := rolloutLogText(t, st, "hello")
	if !strings.Contains(log1, "migrating "+c1) || !strings.Contains(log1, ", port unset") || strings.Contains(log1, secret) {
		t.Fatalf("first rollout's log lacks the release output (or shows the secret):\n%s", log1)
	}
	// The release ran before any node started the new slot.
	for _, n := range ro1.Nodes {
		for _, s := range n.Steps {
			if strings.HasPrefix(s.Name, "start ") && s.Start.Time.Before(ro1.Release.At.Time.Add(-time.Duration(ro1.Release.DurationMillis)*time.Millisecond)) {
				t.Errorf("%s: %s at %v, before the release command started", n.Node, s.Name, s.Start.Time)
			}
		}
	}

	load := startLoad(nodes)
	// A new commit: the release command runs once more.
	c2 := commit("v2", map[string]string{"CHANGES": "v2\n"})
	second := waitDeployment(t, st, "second rollout Ready", 4*time.Minute, readyAt(c2))
	ro2 := rolloutOf(second)
	if got := runs(); total(got) != 2 {
		t.Fatalf("after the second rollout the release command ran %v, want twice in all", got)
	}
	node, ms = releaseStep(ro2)
	t.Logf("second rollout: release step on %s: %d ms (rollout prepare to last switch: %d ms)", node, ms, prepareOf(ro2))

	// A deploy of the same revision does not run it; --rerun-release does
	// (a rollout of the running revision to new slots, release first).
	if _, err := mgr.DeploymentAction(ctx, "hello", api.ActionRequest{Action: api.ActionDeploy, By: "user:e2e", ID: "plain-deploy"}); err != nil {
		t.Fatal(err)
	}
	waitDeployment(t, st, "the plain deploy is done", time.Minute, func(d *api.Deployment) bool {
		return d.Status.LastRequest != nil && d.Status.LastRequest.ID == "plain-deploy"
	})
	if got := runs(); total(got) != 2 {
		t.Fatalf("a deploy of the same revision ran the release command: %v", got)
	}
	if _, err := mgr.DeploymentAction(ctx, "hello", api.ActionRequest{Action: api.ActionDeploy, By: "user:e2e", ID: "rerun-deploy", RerunRelease: true}); err != nil {
		t.Fatal(err)
	}
	rerun := waitDeployment(t, st, "the rerun deploy is done", 3*time.Minute, func(d *api.Deployment) bool {
		return d.Status.LastRequest != nil && d.Status.LastRequest.ID == "rerun-deploy" && readyAt(c2)(d)
	})
	if got := runs(); total(got) != 3 {
		t.Fatalf("deploy --rerun-release: the release command ran %v, want 3 times in all", got)
	}
	ror := rolloutOf(rerun)
	if ror.Trigger != api.TriggerDeployNow || ror.Release == nil || ror.Release.Result != api.ReleaseSucceeded || ror.Revision != second.Status.Revision {
		t.Fatalf("the rerun's rollout: trigger %s revision %d release %+v", ror.Trigger, ror.Revision, ror.Release)
	}

	// A failing release command: nothing switches.
	c3 := commit("v3: a broken migration", map[string]string{"FAIL_RELEASE": "yes\n"})
	failed := waitDeployment(t, st, "the broken migration fails", 4*time.Minute, func(d *api.Deployment) bool {
		return d.Status.FailedAttempt != nil && d.Status.FailedAttempt.Commit == c3 && api.IsTrue(d.Status.Conditions, api.ConditionDegraded)
	})
	if c := api.FindCondition(failed.Status.Conditions, api.ConditionDegraded); c == nil || c.Reason != deployment.ReasonReleaseFailed {
		t.Fatalf("Degraded after the broken migration: %+v", c)
	}
	if failed.Status.Commit != c2 {
		t.Fatalf("after the broken migration status.commit is %s, want %s", failed.Status.Commit, c2)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, n := range nodes {
		if body, err := get(client, n.Address); err != nil || !strings.Contains(body, c2[:12]) {
			t.Fatalf("%s serves %q, %v after the broken migration; want %s", n.Name, body, err, c2[:12])
		}
	}
	ro3 := rolloutOf(failed)
	if ro3.State != api.RolloutFailed || ro3.Release == nil || ro3.Release.Result != api.ReleaseFailed || ro3.Release.ExitCode != 3 {
		t.Fatalf("the broken migration's rollout: state %s, release %+v", ro3.State, ro3.Release)
	}
	for _, n := range ro3.Nodes {
		for _, s := range n.Steps {
			if strings.HasPrefix(s.Name, "start ") || strings.HasPrefix(s.Name, "switch ") {
				t.Errorf("%s ran %s in the rollout whose release failed", n.Node, s.Name)
			}
		}
	}
	if log3 := rolloutLogText(t, st, "hello"); !strings.Contains(log3, "migration failed: column already exists") {
		t.Fatalf("the rollout log lacks the release command's output:\n%s", log3)
	}
	if got := runs(); total(got) != 3 {
		t.Fatalf("after the broken migration the counter says %v, want 3 runs", got)
	}

	// A rollback to c1's revision: its release ran already.
	if _, err := mgr.DeploymentAction(ctx, "hello", api.ActionRequest{Action: api.ActionRollback, ToRevision: first.Status.Revision, By: "user:e2e"}); err != nil {
		t.Fatal(err)
	}
	back := waitDeployment(t, st, "rolled back to c1", 4*time.Minute, readyAt(c1))
	ro4 := rolloutOf(back)
	if ro4.Release == nil || ro4.Release.Result != api.ReleaseSkipped {
		t.Fatalf("the rollback's release record: %+v, want skipped", ro4.Release)
	}
	if got := runs(); total(got) != 3 {
		t.Fatalf("the rollback ran the release command again: %v", got)
	}
	t.Logf("rollback: release %s (%s)", ro4.Release.Result, ro4.Release.Message)

	// exec: output, exit status, the secret in the environment.
	// (The command names the secret by its hash only: the command itself
	// is recorded in an event.)
	sum := sha256.Sum256([]byte(secret))
	out, code := exec("", "sh", "-c", `echo "in $(basename "$PWD") as $(id -un)"; echo oops >&2; echo "pw=$DB_PASSWORD"
[ "$(printf %s "$DB_PASSWORD" | sha256sum | cut -c1-64)" = "`+hex.EncodeToString(sum[:])+`" ] && echo secret-present; exit 7`)
	if code != 7 || !strings.Contains(out, "stdout in "+c1) || !strings.Contains(out, "stderr oops") || !strings.Contains(out, "stdout secret-present") ||
		strings.Contains(out, secret) || !strings.Contains(out, "stdout pw=***") {
		t.Fatalf("exec: exit %d, output:\n%s", code, out)
	}
	// A long exec: the secret is nowhere in the node's process list.
	var ps string
	done := make(chan struct{})
	go func() {
		defer close(done)
		exec(nodes[1].Name, "sleep 3; echo slept")
	}()
	waitFor(t, 10*time.Second, "the long exec runs", func() bool {
		o, _ := testnodes.SSH(t, nodes[1], "ps -eo args")
		if strings.Contains(o, "exec-") || strings.Contains(o, "sleep 3") {
			ps = o
			return true
		}
		return false
	})
	<-done
	if strings.Contains(ps, secret) {
		t.Fatalf("the secret is in the node's process list:\n%s", ps)
	}
	evs, err := st.(store.Events).ListEvents(ctx, api.KindDeployment+"/hello", 0)
	if err != nil {
		t.Fatal(err)
	}
	execs := 0
	for _, e := range evs {
		if strings.Contains(e.Message, secret) {
			t.Fatalf("an event holds the secret: %+v", e)
		}
		if e.Type == api.EventExec {
			execs++
			if !strings.Contains(e.Message, "user:e2e") {
				t.Errorf("exec event does not name who: %q", e.Message)
			}
		}
	}
	if execs == 0 {
		t.Fatal("no Exec event")
	}
	// exec -it: a shell on a terminal; what is typed reaches it.
	termOut := &syncBuffer{}
	tctx, tcancel := context.WithTimeout(ctx, time.Minute)
	_, code, err = mgr.ExecTerminal(tctx, "hello", api.ExecRequest{Command: []string{"sh"}, Node: nodes[2].Name, By: "user:e2e", Rows: 30, Cols: 100},
		afterPrompt(termOut, "echo typed-$((6*7)); tty; stty size; exit 9\n"), termOut, nil)
	tcancel()
	if err != nil || code != 9 || !strings.Contains(termOut.String(), "typed-42") || !strings.Contains(termOut.String(), "/dev/pts/") ||
		!strings.Contains(termOut.String(), "30 100") {
		t.Fatalf("exec -it: exit %d, %v, output %q", code, err, termOut.String())
	}
	if o, _ := testnodes.SSH(t, nodes[2], "ls /var/lib/bakery/apps/hello/run/"); strings.Contains(o, "exec-") {
		t.Errorf("exec scripts left behind: %q", o)
	}
	load.check(t, "two rollouts with a release command, a failed release, a rollback and execs")
	t.Logf("whole test: %v", time.Since(start))
}

// TestE2EReleaseDocker: spec.release and exec under runtime docker, on two
// nodes under continuous requests: the release command runs once per
// rollout in a `docker run --rm` of the new image with the app's
// environment (its output in the rollout log, no container left behind); a
// failing one switches nothing (ReleaseFailed); exec runs in the active
// image and passes its exit status through.
func TestE2EReleaseDocker(t *testing.T) {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 2)[:2]
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	repo, commit := exampleRepo(t)
	var names []string
	cleanup := `for s in blue green; do docker rm -f bakery-dhello-$s; done >/dev/null 2>&1
imgs=$(docker image ls -q bakery/dhello); [ -z "$imgs" ] || docker image rm -f $imgs >/dev/null
h=/usr/local/lib/bakery/bakery-sudo; sudo -n $h nginx-site-remove dhello && sudo -n $h nginx-reload; rm -rf /var/lib/bakery/apps/dhello`
	for _, n := range nodes {
		nn := labNode(n.Name, n.Address)
		nn.Spec.HostKey = n.HostKey
		if _, err := st.Create(ctx, nn); err != nil {
			t.Fatal(err)
		}
		names = append(names, n.Name)
		testnodes.SSH(t, n, cleanup)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			testnodes.SSH(t, n, cleanup)
		}
	})
	key := labKey(t, lab)
	mgr, _ := runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute})

	c1 := commit("v1", map[string]string{"CHANGES": "v1\n"})
	d := dockerDeployment(repo, names...)
	d.Spec.Release = &api.Release{Command: `if [ -f /FAIL_RELEASE ]; then echo "docker migration failed" >&2; exit 4; fi; echo "docker migrating $(cat /VERSION) greeting-len ${#GREETING}"`}
	d.Spec.Build = api.Build{}
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	first := waitDockerDeployment(t, st, "first docker rollout Ready", 4*time.Minute, dockerReadyAt(c1))
	ro1, err := st.GetRollout(ctx, first.Status.CurrentRollout.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rr := ro1.Release; rr == nil || rr.Result != api.ReleaseSucceeded || rr.Node != nodes[0].Name {
		t.Fatalf("first docker rollout's release: %+v", ro1.Release)
	}
	if log := rolloutLogText(t, st, dockerApp); !strings.Contains(log, "docker migrating "+c1[:12]+" greeting-len 5") {
		t.Fatalf("the rollout log lacks the release output:\n%s", log)
	}
	t.Logf("docker release step: %d ms on %s", ro1.Release.DurationMillis, ro1.Release.Node)

	load := startLoadAs(nodes, dockerHost)
	// A broken migration: a file in the image makes the release fail.
	dockerfile, err := os.ReadFile(repo + "/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	c2 := commit("v2 broken", map[string]string{"Dockerfile": string(dockerfile) + "RUN touch /FAIL_RELEASE\n"})
	failed := waitDockerDeployment(t, st, "the broken docker migration fails", 4*time.Minute, func(d *api.Deployment) bool {
		return d.Status.FailedAttempt != nil && d.Status.FailedAttempt.Commit == c2
	})
	if c := api.FindCondition(failed.Status.Conditions, api.ConditionDegraded); c == nil || c.Reason != deployment.ReasonReleaseFailed {
		t.Fatalf("Degraded after the broken docker migration: %+v", c)
	}
	for _, n := range nodes {
		if body, err := getAs(&http.Client{Timeout: 5 * time.Second}, n.Address, dockerHost); err != nil || !strings.Contains(body, c1[:12]) {
			t.Fatalf("%s serves %q, %v; want %s", n.Name, body, err, c1[:12])
		}
		if out, _ := testnodes.SSH(t, n, "docker ps -aq --filter label=bakery.run=1"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: release containers left behind: %q", n.Name, out)
		}
	}
	if log := rolloutLogText(t, st, dockerApp); !strings.Contains(log, "docker migration failed") {
		t.Fatalf("the rollout log lacks the failed release's output:\n%s", log)
	}

	var out strings.Builder
	var mu sync.Mutex
	termOut := &syncBuffer{}
	tctx, tcancel := context.WithTimeout(ctx, time.Minute)
	_, tcode, err := mgr.ExecTerminal(tctx, dockerApp, api.ExecRequest{Command: []string{"sh"}, Node: nodes[0].Name, By: "user:e2e", Rows: 24, Cols: 80},
		afterPrompt(termOut, "cat /VERSION; echo typed-$((6*7)); exit 6\n"), termOut, nil)
	tcancel()
	if err != nil || tcode != 6 || !strings.Contains(termOut.String(), "typed-42") || !strings.Contains(termOut.String(), c1[:12]) {
		t.Fatalf("docker exec -it: exit %d, %v, output %q", tcode, err, termOut.String())
	}
	_, code, err := mgr.Exec(ctx, dockerApp, api.ExecRequest{Command: []string{"sh", "-c", "cat /VERSION; echo \"secret=$API_SECRET\"; exit 5"}, Node: nodes[1].Name, By: "user:e2e"},
		func(l api.ExecLine) { mu.Lock(); out.WriteString(l.Text + "\n"); mu.Unlock() })
	// API_SECRET is a plain env value here (no Secret object): exec masks
	// only Secret values, as the runtime logs do.
	if err != nil || code != 5 || !strings.Contains(out.String(), c1[:12]) || !strings.Contains(out.String(), "secret="+dockerCanary) {
		t.Fatalf("docker exec: exit %d, %v, output %q", code, err, out.String())
	}
	load.check(t, "a docker rollout with a release command, a failed release and an exec")
}

// TestE2EReleaseOverhead measures (never asserts) what spec.release adds
// to a rollout of a new commit on three nodes: rollouts alternate between
// a spec without and with a release command (a trivial one), each timed
// from the push until every node serves it, with the release step's own
// duration from the rollout record. BAKERY_RELEASE_BENCH_ROUNDS (default
// 3) rounds. A measurement, not a check: it runs only when asked
// (BAKERY_RELEASE_BENCH=1 go test -tags e2e -run E2EReleaseOverhead
// ./reconciler/manager/), not in CI.
func TestE2EReleaseOverhead(t *testing.T) {
	if os.Getenv("BAKERY_RELEASE_BENCH") == "" {
		t.Skip("a measurement: set BAKERY_RELEASE_BENCH=1 to run it")
	}
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 3)
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	repo, commit := exampleRepo(t)
	createLabNodes(t, st, nodes)
	const h = "/usr/local/lib/bakery/bakery-sudo"
	cleanup := `for s in blue green; do sudo -n ` + h + ` systemctl disable hello $s; sudo -n ` + h + ` systemctl stop hello $s; sudo -n ` + h + ` unit-remove hello $s; sudo -n ` + h + ` env-remove hello $s; done
sudo -n ` + h + ` nginx-site-remove hello; rm -rf /var/lib/bakery/apps/hello; sudo -n ` + h + ` daemon-reload; sudo -n ` + h + ` nginx-reload; sudo -n ` + h + ` app-remove hello >/dev/null`
	for _, n := range nodes {
		testnodes.SSH(t, n, cleanup)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			testnodes.SSH(t, n, cleanup)
		}
	})
	key := labKey(t, lab)
	runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 200 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute})

	c0 := commit("v0", map[string]string{"CHANGES": "v0\n"})
	d := helloDeployment(repo, nodes[0].Name, nodes[1].Name, nodes[2].Name)
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	waitDeployment(t, st, "first rollout Ready", 4*time.Minute, readyAt(c0))
	setRelease := func(on bool) {
		d := getDeployment(t, st)
		d.Spec.Release = nil
		if on {
			d.Spec.Release = &api.Release{Command: "echo migrated"}
		}
		if _, err := st.Update(ctx, d); err != nil {
			t.Fatal(err)
		}
		// The spec change is a revision of its own: let it roll out.
		waitDeployment(t, st, "the spec change rolled out", 4*time.Minute, func(d *api.Deployment) bool {
			return readyAt(d.Status.Commit)(d) && d.Status.ObservedGeneration == d.Metadata.Generation
		})
	}
	rounds := 3
	if v := os.Getenv("BAKERY_RELEASE_BENCH_ROUNDS"); v != "" {
		if _, err := fmt.Sscan(v, &rounds); err != nil {
			t.Fatal(err)
		}
	}
	var without, with, steps []time.Duration
	for i := range rounds {
		for _, on := range []bool{false, true} {
			setRelease(on)
			t0 := time.Now()
			c := commit(fmt.Sprintf("round %d release %v", i, on), map[string]string{"CHANGES": fmt.Sprintf("%d %v\n", i, on)})
			done := waitDeployment(t, st, "the commit rolled out", 4*time.Minute, readyAt(c))
			took := time.Since(t0)
			if !on {
				without = append(without, took)
				continue
			}
			with = append(with, took)
			ro, err := st.GetRollout(ctx, done.Status.CurrentRollout.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ro.Release == nil || ro.Release.Result != api.ReleaseSucceeded {
				t.Fatalf("round %d: release %+v", i, ro.Release)
			}
			steps = append(steps, time.Duration(ro.Release.DurationMillis)*time.Millisecond)
		}
	}
	t.Logf("rollout of a new commit on 3 nodes, push to served: without release %v, with release %v; release step %v",
		without, with, steps)
	t.Logf("medians: without %v, with %v, release step %v", median(without), median(with), median(steps))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// afterPrompt is a terminal's stdin that types input once the shell's
// prompt shows in out (keys typed before the remote terminal is set up are
// discarded, as on any terminal), then ends.
func afterPrompt(out *syncBuffer, input string) io.Reader {
	return &promptReader{out: out, input: input}
}

type promptReader struct {
	out   *syncBuffer
	input string
	sent  bool
}

func (r *promptReader) Read(p []byte) (int, error) {
	if r.sent {
		select {} // a user who typed and waits: the shell's exit ends the session
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s := r.out.String()
		if strings.Contains(s, "$ ") || strings.Contains(s, "# ") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.sent = true
	return copy(p, r.input), nil
}
