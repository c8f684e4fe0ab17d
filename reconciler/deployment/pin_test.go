package deployment

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/internal/events/eventstest"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/source"
)

// undoEnv is a file store holding deployment "web" after revision 1
// (GREETING=hello, commit c1) succeeded and a spec change to revision 2
// (GREETING=broken, nodes n1 and n2, an ingress host) failed: the last
// good revision 1 still serves, the failed attempt stands.
func undoEnv(t *testing.T, recordSpecs bool) (*Reconciler, Store, *api.Deployment) {
	t.Helper()
	ctx := t.Context()
	st := testenv.FileStore(t).(Store)
	r := &Reconciler{Store: st, Logger: slog.New(slog.DiscardHandler)}
	d := helloDeploymentFor("web", "/srv/git/web.git")
	d.Spec.Run.Env = []api.EnvVar{{Name: "GREETING", Value: "hello"}}
	d.Spec.Build.Test = "npm test"
	o, err := st.Create(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	d = o.(*api.Deployment)
	spec1 := d.Spec
	ro1 := &api.Rollout{ID: "web-1-a", Deployment: "web", Revision: 1, Commit: c1, Generation: 1, Trigger: api.TriggerApply, State: api.RolloutSucceeded}

	// The spec change: env, build, ingress, and the nodes (placement is
	// not part of the revision: an undo keeps it).
	d.Spec.Run.Env = []api.EnvVar{{Name: "GREETING", Value: "broken"}, {Name: "EXTRA", Value: "1"}}
	d.Spec.Build.Test = ""
	d.Spec.Ingress = &api.Ingress{Hosts: []string{"web.example.test"}}
	d.Spec.Nodes = []string{"n1", "n2"}
	if o, err = st.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	d = o.(*api.Deployment)
	ro2 := &api.Rollout{ID: "web-2-b", Deployment: "web", Revision: 2, Commit: c1, Generation: 2, Trigger: api.TriggerApply, State: api.RolloutFailed}
	if recordSpecs {
		ro1.Spec, ro2.Spec = &spec1, &d.Spec
	}
	for _, ro := range []*api.Rollout{ro1, ro2} {
		if err := st.CreateRollout(ctx, ro); err != nil {
			t.Fatal(err)
		}
	}
	d.Status.Commit, d.Status.Revision, d.Status.SpecHash, d.Status.ObservedGeneration = c1, 1, specHash(&spec1), 2
	d.Status.FailedAttempt = &api.FailedAttempt{Commit: c1, SpecHash: specHash(&d.Spec), Reason: "health check failed"}
	if o, err = st.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
	return r, st, o.(*api.Deployment)
}

func getWeb(t *testing.T, st Store) *api.Deployment {
	t.Helper()
	o, err := st.Get(t.Context(), api.KindDeployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.Deployment)
}

// TestUndoRestoresSpec: an undo while a failed spec change stands writes
// the last good revision's recorded spec (env, build, ingress) as a new
// generation, keeps the placement, pins the revision's commit at that
// generation and says so in condition Pinned; the reconcile then finds the
// revision it runs (no new rollout needed).
func TestUndoRestoresSpec(t *testing.T) {
	ctx := t.Context()
	r, st, before := undoEnv(t, true)
	if err := r.RecordAction(ctx, "web", api.ActionRequest{Action: api.ActionRollback, By: "user:alice"}); err != nil {
		t.Fatal(err)
	}
	d := getWeb(t, st)
	if d.Metadata.Generation != before.Metadata.Generation+1 {
		t.Fatalf("generation %d after the undo, want %d", d.Metadata.Generation, before.Metadata.Generation+1)
	}
	if want := []api.EnvVar{{Name: "GREETING", Value: "hello"}}; !cmp.Equal(d.Spec.Run.Env, want) {
		t.Errorf("env after the undo: %+v, want %+v", d.Spec.Run.Env, want)
	}
	if d.Spec.Build.Test != "npm test" || d.Spec.Ingress != nil {
		t.Errorf("build %+v, ingress %+v after the undo: want revision 1's", d.Spec.Build, d.Spec.Ingress)
	}
	if !cmp.Equal(d.Spec.Nodes, []string{"n1", "n2"}) {
		t.Errorf("nodes %v after the undo: placement is kept", d.Spec.Nodes)
	}
	if d.Status.Pin == nil || d.Status.Pin.ID == "" {
		t.Fatalf("pin %+v: the undo's request id is missing", d.Status.Pin)
	}
	want := &api.CommitPin{ID: d.Status.Pin.ID, Commit: c1, Reason: api.TriggerRollback, Generation: d.Metadata.Generation, Revision: 1, By: "user:alice", SpecRestored: true}
	if diff := cmp.Diff(want, d.Status.Pin); diff != "" {
		t.Errorf("pin (-want +got):\n%s", diff)
	}
	if d.Status.FailedAttempt != nil {
		t.Errorf("the failed attempt stands after the undo: %+v", d.Status.FailedAttempt)
	}
	c := api.FindCondition(d.Status.Conditions, api.ConditionPinned)
	if c == nil || c.Status != api.ConditionTrue || c.Reason != ReasonRolledBack ||
		!strings.Contains(c.Message, "revision 1 (commit "+api.ShortCommit(c1)+")") || !strings.Contains(c.Message, "bakery rollout resume deployment/web") {
		t.Errorf("condition Pinned: %+v", c)
	}
	// The reconcile resolves the pin at the new generation: the same
	// commit and spec hash as revision 1, so no new revision.
	rv := &revision{commit: c1, pin: d.Status.Pin}
	d.Default()
	rv.decide(d)
	if rv.revision != 1 || rv.wait {
		t.Errorf("after the undo the reconcile brings revision %d (wait %v), want 1: the nodes run it", rv.revision, rv.wait)
	}

	// A second undo (no failed attempt now): nothing earlier than 1.
	var ae *ActionError
	if err := r.RecordAction(ctx, "web", api.ActionRequest{Action: api.ActionRollback}); !errors.As(err, &ae) {
		t.Errorf("undo with no earlier revision: %v, want an ActionError", err)
	}

	// Resume clears the pin and its condition; a second resume is refused.
	if err := r.RecordAction(ctx, "web", api.ActionRequest{Action: api.ActionResume, By: "ci"}); err != nil {
		t.Fatal(err)
	}
	d = getWeb(t, st)
	if d.Status.Pin != nil || api.FindCondition(d.Status.Conditions, api.ConditionPinned) != nil || d.Status.DeployRequest == nil || d.Status.DeployRequest.By != "ci" {
		t.Errorf("after resume: pin %+v, conditions %+v, deploy request %+v", d.Status.Pin, d.Status.Conditions, d.Status.DeployRequest)
	}
	if err := r.RecordAction(ctx, "web", api.ActionRequest{Action: api.ActionResume}); !errors.As(err, &ae) || !strings.Contains(err.Error(), "not pinned") {
		t.Errorf("resume of an unpinned deployment: %v", err)
	}
}

// TestUndoWithoutRecordedSpec: a target rolled out before rollouts kept
// their spec: only its commit is pinned, the spec (and generation) stay,
// and the pin and condition say so.
func TestUndoWithoutRecordedSpec(t *testing.T) {
	r, st, before := undoEnv(t, false)
	if err := r.RecordAction(t.Context(), "web", api.ActionRequest{Action: api.ActionRollback, ToRevision: 1}); err != nil {
		t.Fatal(err)
	}
	d := getWeb(t, st)
	if d.Metadata.Generation != before.Metadata.Generation || !cmp.Equal(d.Spec, before.Spec) {
		t.Errorf("the spec changed: generation %d → %d", before.Metadata.Generation, d.Metadata.Generation)
	}
	if p := d.Status.Pin; p == nil || p.SpecRestored || p.Commit != c1 || p.Generation != d.Metadata.Generation {
		t.Errorf("pin %+v, want commit only", p)
	}
	if c := api.FindCondition(d.Status.Conditions, api.ConditionPinned); c == nil || !strings.Contains(c.Message, "no recorded spec") {
		t.Errorf("condition Pinned does not say the spec was not restored: %+v", c)
	}
}

// TestStartRolloutRecordsSpec: every rollout record carries the spec it
// rolls out (defaults applied), which listings leave out.
func TestStartRolloutRecordsSpec(t *testing.T) {
	st := testenv.FileStore(t).(Store)
	r := &Reconciler{Store: st, Logger: slog.New(slog.DiscardHandler)}
	d := helloDeploymentFor("web", "/srv/git/web.git")
	d.Spec.Run.Env = []api.EnvVar{{Name: "GREETING", Value: "hello"}}
	ro, err := r.startRollout(t.Context(), d, &rolloutPlan{commit: c1, revision: 1, trigger: api.TriggerApply})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.GetRollout(t.Context(), ro.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&d.Spec, got.Spec); diff != "" {
		t.Fatalf("recorded spec (-want +got):\n%s", diff)
	}
	d.Spec.Run.Env[0].Value = "changed"
	if ro.Spec.Run.Env[0].Value != "hello" {
		t.Fatal("the rollout's spec aliases the deployment's")
	}
}

// TestPushIgnoredOncePerCommit: while a rollback's pin holds, each new
// commit of the followed branch is recorded once as PushIgnored (not at
// every resync); the commit the branch named when the pin was set is not
// a push. A spec change ends the pin: condition Pinned goes.
func TestPushIgnoredOncePerCommit(t *testing.T) {
	ctx := t.Context()
	repo := filepath.Join(t.TempDir(), "repo")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.test", "-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git("init", "-q", "-b", "main")
	commit := func(msg string) string {
		git("commit", "-q", "--allow-empty", "-m", msg)
		return git("rev-parse", "HEAD")
	}
	old := commit("v1")
	bad := commit("v2")

	st := testenv.FileStore(t).(Store)
	l := eventstest.New(t, nil)
	r := &Reconciler{Store: st, Logger: slog.New(slog.DiscardHandler), Events: l.Rec,
		Mirrors: &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), Logger: slog.New(slog.DiscardHandler)}}
	d := helloDeploymentFor("web", repo)
	o, err := st.Create(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	d = o.(*api.Deployment)
	d.Status.Pin = &api.CommitPin{Commit: old, Reason: api.TriggerRollback, Revision: 1, Generation: d.Metadata.Generation, SpecRestored: true}
	if _, err := st.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
	resync := func() {
		t.Helper()
		d := getWeb(t, st)
		d.Default()
		if _, err := r.resolveSource(ctx, d, &outcome{}); err != nil {
			t.Fatal(err)
		}
	}
	pushIgnored := func() []string {
		var out []string
		for _, e := range l.Events(t) {
			if strings.HasPrefix(e, api.EventPushIgnored+" ") {
				out = append(out, e)
			}
		}
		return out
	}

	// The branch names the rolled-back-from commit: remembered, no event.
	resync()
	resync()
	d = getWeb(t, st)
	if d.Status.Pin.RefHead != bad || len(pushIgnored()) != 0 {
		t.Fatalf("first look: refHead %s, events %v", d.Status.Pin.RefHead, pushIgnored())
	}
	if c := api.FindCondition(d.Status.Conditions, api.ConditionPinned); c == nil || c.Reason != ReasonRolledBack {
		t.Fatalf("condition Pinned: %+v", c)
	}
	if r.Supersedes(d) != r.Supersedes(&api.Deployment{Status: api.DeploymentStatus{Pin: &api.CommitPin{Commit: old, Reason: api.TriggerRollback, Revision: 1,
		Generation: d.Metadata.Generation, SpecRestored: true}}}) {
		t.Fatal("recording the ref's head supersedes the reconcile that records it")
	}

	// A push: one event naming it, however many resyncs follow.
	pushed := commit("v3")
	for range 3 {
		resync()
	}
	evs := pushIgnored()
	if len(evs) != 1 {
		t.Fatalf("PushIgnored events after a push and 3 resyncs: %v", evs)
	}
	last := l.Last()
	if last.Severity != api.SeverityWarning || !strings.Contains(last.Message, "main moved to commit "+api.ShortCommit(pushed)) ||
		!strings.Contains(last.Message, "bakery rollout resume deployment/web") {
		t.Fatalf("PushIgnored message: %+v", last)
	}
	// Another push: one more.
	commit("v4")
	resync()
	resync()
	if evs := pushIgnored(); len(evs) != 2 {
		t.Fatalf("PushIgnored events after a second push: %v", evs)
	}

	// A new spec generation: the pin no longer holds, the condition goes.
	d = getWeb(t, st)
	d.Spec.Run.Command = "y"
	if _, err := st.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	commit("v5")
	resync()
	d = getWeb(t, st)
	if c := api.FindCondition(d.Status.Conditions, api.ConditionPinned); c != nil {
		t.Fatalf("condition Pinned after a spec change: %+v", c)
	}
	if evs := pushIgnored(); len(evs) != 2 {
		t.Fatalf("PushIgnored after the pin ended: %v", evs)
	}
}
