//go:build e2e

package manager

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/manifests"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/scripts/testnodes"
)

// TestE2EExampleTasks deploys examples/tasks as the README's walkthrough
// does, from its own manifest: the release step migrates the node's SQLite
// database before the web process starts (its health check fails on an old
// schema), the worker works off tasks posted through nginx, the schedule
// runs in the active release, a new commit with one more migration rolls
// out under load with 0 failed requests, and deleting the app leaves no
// unit behind.
func TestE2EExampleTasks(t *testing.T) {
	lab := testnodes.Require(t)
	node := testnodes.RequireNodes(t, 1)[0]
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	const host = "tasks.example.test"

	// The example's repository, as scripts/example-repo.sh makes it.
	repo, commit := exampleRepoOf(t, "tasks")
	c1 := commit("tasks v1", map[string]string{"CHANGES": "v1\n"})

	// The manifest of the walkthrough, pointed at this lab: its node, this
	// repository, a schedule every 5 s instead of 15 min.
	objs, err := manifests.Load("../../examples/tasks/app.yaml", nil)
	if err != nil || len(objs) != 1 {
		t.Fatalf("examples/tasks/app.yaml: %d objects, %v", len(objs), err)
	}
	d := objs[0].(*api.Deployment)
	if d.Spec.Release == nil || len(d.Spec.Processes) != 1 || len(d.Spec.Schedules) != 1 {
		t.Fatalf("the example lost its release, worker or schedule: %+v", d.Spec)
	}
	d.Spec.Source.Repo = repo
	d.Spec.Nodes = []string{node.Name}
	d.Spec.Schedules[0].Schedule = "*:*:0/5"
	d.Spec.HealthCheck.Interval = &api.Duration{Duration: 100 * time.Millisecond}
	d.Spec.HealthCheck.Retries = 50
	d.Spec.Strategy.Drain = &api.Duration{Duration: 200 * time.Millisecond}
	d.Default()

	testnodes.SSH(t, node, `h=/usr/local/lib/bakery/bakery-sudo; sudo -n $h app-remove tasks >/dev/null 2>&1; rm -rf /var/lib/bakery/apps/tasks; true`)
	nn := labNode(node.Name, node.Address)
	nn.Spec.HostKey = node.HostKey
	if _, err := st.Create(ctx, nn); err != nil {
		t.Fatal(err)
	}
	key := labKey(t, lab)
	runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 2 * time.Second, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute})

	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	ready := func(commit string) func(d *api.Deployment) bool {
		return func(d *api.Deployment) bool {
			return d.Status.Commit == commit && d.Status.ObservedGeneration == d.Metadata.Generation && api.IsTrue(d.Status.Conditions, api.ConditionReady)
		}
	}
	got := waitNamed(t, st, "tasks", "the example Ready", 4*time.Minute, ready(c1))
	if r := got.Status.Release; r == nil || r.Commit != c1 || r.Result != api.ReleaseSucceeded {
		t.Fatalf("status.release after the first rollout: %+v", r)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	call := func(method, path, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+net.JoinHostPort(node.Address, "80")+path, strings.NewReader(body))
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return strings.ReplaceAll(string(b), " ", "") // json.dumps puts a space after ':'

	}
	waitFirstServed(t, []testnodes.Node{node}, host, `{"tasks"`)
	if h := call("GET", "/healthz", ""); !strings.Contains(h, `"schema":3`) {
		t.Fatalf("healthz after the release step: %s", h)
	}

	// The worker works off what the web process takes in.
	load := startLoadAs([]testnodes.Node{node}, host)
	for i := range 3 {
		call("POST", "/", fmt.Sprintf("job-%d", i))
	}
	waitFor(t, 60*time.Second, "the worker finished the 3 tasks", func() bool {
		return strings.Contains(call("GET", "/", ""), `"done":3`)
	})
	// The schedule runs in the active release.
	waitFor(t, 60*time.Second, "the prune schedule ran", func() bool {
		for _, s := range getNamed(t, st, "tasks").Status.Schedules {
			if s.Name == "prune" && s.LastRun != nil && s.Result == "succeeded" {
				return true
			}
		}
		return false
	})

	// A new commit with one more migration: the release step runs it before
	// the new version starts, with 0 failed requests.
	tasks := filepath.Join(repo, "tasks.py")
	src, err := os.ReadFile(tasks)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(src), `"CREATE INDEX tasks_state ON tasks (state, id)",`,
		`"CREATE INDEX tasks_state ON tasks (state, id)",
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",`, 1)
	if next == string(src) {
		t.Fatal("test setup: no migration added")
	}
	c2 := commit("tasks v2: notes table", map[string]string{"tasks.py": next})
	got = waitNamed(t, st, "tasks", "the second commit Ready", 4*time.Minute, ready(c2))
	load.check(t, "the example's rollout with a migration")
	if r := got.Status.Release; r == nil || r.Commit != c2 || r.Result != api.ReleaseSucceeded {
		t.Fatalf("status.release after the second rollout: %+v", r)
	}
	if h := call("GET", "/healthz", ""); !strings.Contains(h, `"schema":4`) {
		t.Fatalf("healthz after the second release step: %s", h)
	}
	call("POST", "/", "after-v2")
	waitFor(t, 60*time.Second, "the new worker finished the task", func() bool {
		return strings.Contains(call("GET", "/", ""), `"done":4`)
	})

	// Deleting the app removes its units, timers, site and directories.
	cur := getNamed(t, st, "tasks")
	cur.Metadata.Annotations = map[string]string{api.AnnotationDeletionRequested: "now"}
	cur.Metadata.ResourceVersion = ""
	if _, err := st.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the example deleted", func() bool {
		_, err := st.Get(ctx, api.KindDeployment, "tasks")
		return errors.Is(err, store.ErrNotFound)
	})
	out, err := testnodes.Exec(t, node.Name, "ls /etc/systemd/system/ /etc/systemd/system/*.wants/ /etc/nginx/conf.d/ /var/lib/bakery/apps/ /var/lib/bakery-apps/; systemctl list-units --all --plain --no-legend 'bakery-tasks-*'")
	if err != nil || strings.Contains(out, "bakery-tasks") || strings.Contains(out, "\ntasks\n") {
		t.Fatalf("deleting the example left things behind (%v):\n%s", err, out)
	}
}
