//go:build e2e

package manager

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/scripts/testnodes"
)

// refusingServer is the example app's server.js with one check in front:
// it refuses GREETING=refused (exits), so a spec that sets it fails its
// health check — a revision failure caused by configuration alone.
const refusingServer = `'use strict';
if (process.env.GREETING === 'refused') {
  console.error('GREETING=refused is not a greeting');
  process.exit(1);
}
`

// TestE2EUndoRestoresSpec, on three nodes under continuous requests
// through every node's nginx: a spec change (an env value the app refuses)
// fails its health check and the old revision keeps serving; rollout undo
// writes the old spec back (the old env is in the spec again), pins the
// commit and the app serves; a push after the undo is not rolled out and
// is recorded once as PushIgnored naming the commit; resume rolls the
// branch head out. No request fails throughout.
func TestE2EUndoRestoresSpec(t *testing.T) {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 3)
	st := testenv.FileStore(t).(deployment.Store)
	ctx := t.Context()
	repo, commit := exampleRepo(t)
	createLabNodes(t, st, nodes)
	for _, n := range nodes {
		testnodes.SSH(t, n, `h=/usr/local/lib/bakery/bakery-sudo
for s in blue green; do sudo -n $h systemctl disable hello $s; sudo -n $h systemctl stop hello $s; sudo -n $h unit-remove hello $s; done
sudo -n $h nginx-site-remove hello; rm -rf /var/lib/bakery/apps/hello
sudo -n $h daemon-reload; sudo -n $h nginx-reload`)
	}
	key := labKey(t, lab)
	mgr, _ := runManager(t, Config{Store: st, Identity: nodeconn.Identity{PrivatePEM: key, AuthorizedKey: lab.PublicKey},
		DataDir: t.TempDir(), Resync: 500 * time.Millisecond, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		StepTimeout: 2 * time.Minute})
	start := time.Now()

	server, err := os.ReadFile(repo + "/server.js")
	if err != nil {
		t.Fatal(err)
	}
	c1 := commit("refuse GREETING=refused", map[string]string{"server.js": refusingServer + string(server)})
	d := helloDeployment(repo, nodes[0].Name, nodes[1].Name, nodes[2].Name)
	if _, err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	good := waitDeployment(t, st, "first rollout Ready", 3*time.Minute, readyAt(c1))
	client := &http.Client{Timeout: 5 * time.Second}
	serves := func(what, want string) {
		t.Helper()
		for _, n := range nodes {
			if body, err := get(client, n.Address); err != nil || !strings.HasPrefix(body, want) {
				t.Fatalf("%s: %s serves %q, %v; want %q", what, n.Name, body, err, want)
			}
		}
	}
	waitFirstServed(t, nodes, "hello.example.test", "hello from "+c1[:12])
	t.Logf("first rollout on 3 nodes: %v", time.Since(start))

	// The bad configuration: GREETING=refused. Revision 2 fails its
	// health check on the first node; revision 1 keeps serving.
	load := startLoad(nodes)
	bad := getDeployment(t, st)
	bad.Spec.Run.Env[0].Value = "refused"
	if _, err := st.Update(ctx, bad); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	failed := waitDeployment(t, st, "the refused env fails", 2*time.Minute, func(d *api.Deployment) bool {
		return d.Status.FailedAttempt != nil && d.Status.ObservedGeneration == d.Metadata.Generation && api.IsTrue(d.Status.Conditions, api.ConditionDegraded)
	})
	t.Logf("the refused env failed in %v: %s", time.Since(t0), failed.Status.FailedAttempt.Reason)
	if failed.Status.Revision != good.Status.Revision || failed.Status.Commit != c1 {
		t.Fatalf("after the failure: revision %d commit %s, want the last good %d %s", failed.Status.Revision, failed.Status.Commit, good.Status.Revision, c1)
	}

	// Undo: revision 1's spec (GREETING=hello) comes back as a new
	// generation, with its commit pinned.
	t0 = time.Now()
	undone, err := mgr.DeploymentAction(ctx, "hello", api.ActionRequest{Action: api.ActionRollback, By: "user:e2e"})
	if err != nil {
		t.Fatal(err)
	}
	if v := undone.Spec.Run.Env[0]; v.Name != "GREETING" || v.Value != "hello" {
		t.Fatalf("env after the undo: %+v, want GREETING=hello", undone.Spec.Run.Env)
	}
	if p := undone.Status.Pin; p == nil || !p.SpecRestored || p.Commit != c1 || p.Revision != good.Status.Revision || p.Generation != undone.Metadata.Generation ||
		undone.Metadata.Generation != failed.Metadata.Generation+1 {
		t.Fatalf("after the undo: generation %d (was %d), pin %+v", undone.Metadata.Generation, failed.Metadata.Generation, undone.Status.Pin)
	}
	back := waitDeployment(t, st, "Ready again after the undo", 2*time.Minute, func(d *api.Deployment) bool {
		return readyAt(c1)(d) && d.Status.FailedAttempt == nil && !api.IsTrue(d.Status.Conditions, api.ConditionDegraded)
	})
	t.Logf("undo to Ready: %v (revision %d)", time.Since(t0), back.Status.Revision)
	serves("after the undo", "hello from "+c1[:12])
	if c := api.FindCondition(back.Status.Conditions, api.ConditionPinned); c == nil || c.Status != api.ConditionTrue || c.Reason != deployment.ReasonRolledBack ||
		!strings.Contains(c.Message, "bakery rollout resume deployment/hello") {
		t.Fatalf("condition Pinned after the undo: %+v", c)
	}
	// The reconcile has looked at the branch under the pin (it names c1).
	waitDeployment(t, st, "the pin records the branch's commit", 30*time.Second, func(d *api.Deployment) bool {
		return d.Status.Pin != nil && d.Status.Pin.RefHead == c1
	})

	// A push after the undo: recorded as ignored, not rolled out.
	c2 := commit("v2", map[string]string{"CHANGES": "v2\n"})
	ignored := func() []*api.Event {
		evs, err := st.(store.Events).ListEvents(ctx, api.KindDeployment+"/hello", 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []*api.Event
		for _, e := range evs {
			if e.Type == api.EventPushIgnored {
				out = append(out, e)
			}
		}
		return out
	}
	t0 = time.Now()
	waitFor(t, 30*time.Second, "PushIgnored for the push after the undo", func() bool { return len(ignored()) > 0 })
	t.Logf("PushIgnored recorded %v after the push", time.Since(t0))
	ev := ignored()[0]
	if !strings.Contains(ev.Message, api.ShortCommit(c2)) || !strings.Contains(ev.Message, "bakery rollout resume deployment/hello") {
		t.Fatalf("PushIgnored: %q", ev.Message)
	}
	// Three more reconciles (run here, beside the loop's own resyncs
	// every 500 ms): still the one event, and the pinned commit serves.
	for range 3 {
		if _, err := mgr.deps.Reconcile(ctx, reconciler.Request{Kind: api.KindDeployment, Name: "hello"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(ignored()); n != 1 {
		t.Fatalf("%d PushIgnored events for one push, want 1", n)
	}
	if d := getDeployment(t, st); d.Status.Commit != c1 || d.Status.Pin == nil || d.Status.Pin.RefHead != c2 {
		t.Fatalf("while pinned: commit %s, pin %+v", d.Status.Commit, d.Status.Pin)
	}
	serves("while pinned", "hello from "+c1[:12])

	// Resume: the branch head rolls out, with the restored spec.
	t0 = time.Now()
	if _, err := mgr.DeploymentAction(ctx, "hello", api.ActionRequest{Action: api.ActionResume, By: "user:e2e"}); err != nil {
		t.Fatal(err)
	}
	resumed := waitDeployment(t, st, "the branch head rolled out after resume", 3*time.Minute, readyAt(c2))
	t.Logf("resume to Ready at the branch head: %v", time.Since(t0))
	load.check(t, "the failed env change, the undo, the ignored push and the resume")
	serves("after resume", "hello from "+c2[:12])
	if resumed.Status.Pin != nil || api.FindCondition(resumed.Status.Conditions, api.ConditionPinned) != nil {
		t.Fatalf("after resume: pin %+v, conditions %+v", resumed.Status.Pin, resumed.Status.Conditions)
	}
	ro, err := st.GetRollout(ctx, resumed.Status.CurrentRollout.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ro.Spec == nil || ro.Spec.Run.Env[0].Value != "hello" || ro.Commit != c2 {
		t.Fatalf("the resumed rollout's record: commit %s, spec %+v", ro.Commit, ro.Spec)
	}
	if n := len(ignored()); n != 1 {
		t.Fatalf("%d PushIgnored events in all, want 1", n)
	}
	t.Logf("whole test: %v", time.Since(start))
}

// waitFor polls cond every 50 ms until it holds, failing t after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
