package deployment

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

func testRelease() *releasePlan {
	return &releasePlan{command: "./migrate", commandHash: releaseCommandHash("./migrate"), timeout: time.Minute, script: "release-0123456789abcdef.sh"}
}

// The release command runs once, on the first node, after every node's
// build part (install) and before any node starts its new slot.
func TestReleaseRunsOnceBetweenBuildAndStart(t *testing.T) {
	f := &fleet{release: testRelease()}
	ro, _, _, failure := f.run(t, api.Strategy{MaxUnavailable: 1}, "n1", "n2", "n3")
	if failure != nil {
		t.Fatal(failure)
	}
	journal := strings.Join(f.journal, "\n")
	if c := f.count(" in " + nf.ReleaseID(testCommit, testBuildHash)); c != 1 {
		t.Fatalf("the release command ran %d times, want once:\n%s", c, journal)
	}
	rel := f.index("n1 release green in " + nf.ReleaseID(testCommit, testBuildHash))
	if rel < 0 {
		t.Fatalf("the release command did not run on n1 with the new (green) slot's environment:\n%s", journal)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if i := f.index(n + " install green"); i < 0 || i > rel {
			t.Errorf("%s installed at %d, after the release command (%d):\n%s", n, i, rel, journal)
		}
		if i := f.index(n + " start green"); i < rel {
			t.Errorf("%s started its new slot (%d) before the release command ran (%d):\n%s", n, i, rel, journal)
		}
		if f.index(n+" switch green") < 0 {
			t.Errorf("%s did not switch:\n%s", n, journal)
		}
	}
	if ro.Release == nil || ro.Release.Result != api.ReleaseSucceeded || ro.Release.Node != "n1" || ro.Release.Commit != "" && ro.Release.CommandHash != testRelease().commandHash {
		t.Errorf("rollout's release record %+v", ro.Release)
	}
	var steps []string
	for _, s := range ro.Nodes[0].Steps {
		steps = append(steps, s.Name)
	}
	if diff := cmp.Diff([]string{"install green", StepRelease, "start green", "health green", "switch green", "drain blue", "stop blue (replaced)", "prune"}, steps); diff != "" {
		t.Errorf("n1's steps (-want +got):\n%s", diff)
	}
}

// A failing release command fails the rollout (ReleaseFailed): no node
// starts or switches, the old slots keep serving.
func TestFailedReleaseSwitchesNothing(t *testing.T) {
	f := &fleet{release: testRelease(), releaseErr: &sshexec.ExitError{Code: 3}}
	ro, p, failedNode, failure := f.run(t, api.Strategy{MaxUnavailable: 1}, "n1", "n2", "n3")
	if failure == nil || failedNode != "n1" {
		t.Fatalf("failure %v on %q, want the release command's on n1", failure, failedNode)
	}
	journal := strings.Join(f.journal, "\n")
	for _, what := range []string{"start green", "switch green", "stop blue", "stop green"} {
		if c := f.count(what); c != 0 {
			t.Errorf("%d nodes did %q after a failed release command:\n%s", c, what, journal)
		}
	}
	e := classify(t.Context(), t.Context(), helloDeploymentFor("x", "repo"), p, failure, failedNode)
	if e.state != api.RolloutFailed || e.reason != ReasonReleaseFailed {
		t.Errorf("classified %s/%s, want failed/ReleaseFailed", e.state, e.reason)
	}
	if ro.Release == nil || ro.Release.Result != api.ReleaseFailed || ro.Release.ExitCode != 3 {
		t.Errorf("rollout's release record %+v, want failed with exit code 3", ro.Release)
	}
	want := map[string]string{"n1": api.RolloutFailed, "n2": api.RolloutCancelled, "n3": api.RolloutCancelled}
	if diff := cmp.Diff(want, nodeStates(ro)); diff != "" {
		t.Errorf("node states (-want +got):\n%s", diff)
	}
}

// A node that cannot be reached for the release command: nothing starts,
// every node is waited for (the rollout continues, release first).
func TestUnreachableReleaseWaits(t *testing.T) {
	f := &fleet{release: testRelease(), releaseErr: fmt.Errorf("run: %w", sshexec.ErrConnection)}
	_, p, _, failure := f.run(t, api.Strategy{MaxUnavailable: 1}, "n1", "n2")
	if failure != nil {
		t.Fatalf("an unreachable node failed the rollout: %v", failure)
	}
	if c := f.count("start green"); c != 0 {
		t.Errorf("%d nodes started the new revision without its release command", c)
	}
	if nodes, _ := p.waiting(); !cmp.Equal(nodes, []string{"n1", "n2"}) {
		t.Errorf("waiting for %v, want n1 and n2", nodes)
	}
}

func TestReleaseDecision(t *testing.T) {
	const c1, c2 = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	spec := &api.DeploymentSpec{Release: &api.Release{Command: "./migrate"}}
	h := releaseCommandHash("./migrate")
	ran := func(id, commit, hash, result, request string) *api.Rollout {
		return &api.Rollout{ID: id, Request: request, Release: &api.ReleaseRun{Commit: commit, CommandHash: hash, Result: result}}
	}
	history := []*api.Rollout{ran("x-2", c2, h, api.ReleaseFailed, ""), ran("x-1", c1, h, api.ReleaseSucceeded, "req1")}
	for _, tc := range []struct {
		name            string
		spec            *api.DeploymentSpec
		commit, trigger string
		request         string
		repair, rerun   bool
		starts          bool
		history         []*api.Rollout
		run             bool
	}{
		{name: "new commit", spec: spec, commit: c2, trigger: api.TriggerApply, starts: true, history: history, run: true},
		{name: "no release", spec: &api.DeploymentSpec{}, commit: c2, trigger: api.TriggerApply, starts: true},
		{name: "nothing starts", spec: spec, commit: c2, trigger: api.TriggerApply},
		{name: "rollback to a commit it ran for", spec: spec, commit: c1, trigger: api.TriggerRollback, starts: true, history: history},
		{name: "deploy of the same commit", spec: spec, commit: c1, trigger: api.TriggerDeployNow, starts: true, history: history},
		{name: "deploy --rerun-release", spec: spec, commit: c1, trigger: api.TriggerDeployNow, request: "req2", rerun: true, starts: true, history: history, run: true},
		{name: "rerun request already carried out", spec: spec, commit: c1, trigger: api.TriggerDeployNow, request: "req1", rerun: true, starts: true, history: history},
		{name: "changed command", spec: &api.DeploymentSpec{Release: &api.Release{Command: "./migrate --all"}}, commit: c1, trigger: api.TriggerApply, starts: true, history: history, run: true},
		{name: "restart", spec: spec, commit: c2, trigger: api.TriggerRestart, starts: true},
		{name: "drift repair", spec: spec, commit: c2, trigger: api.TriggerDriftRepair, starts: true},
		{name: "repair of the last good revision", spec: spec, commit: c2, trigger: api.TriggerApply, repair: true, starts: true},
	} {
		why := releaseDecision(tc.spec, tc.commit, tc.trigger, tc.request, tc.repair, tc.rerun, tc.starts, tc.history)
		if (why == "") != tc.run {
			t.Errorf("%s: run=%v (%s), want %v", tc.name, why == "", why, tc.run)
		}
	}
}

// The prepare phase splits at its start.
func TestPrepareParts(t *testing.T) {
	ph := splitPlan(testPlan(t, testObs()))
	names := func(as []Action) (out []string) {
		for _, a := range as {
			out = append(out, a.String())
		}
		return out
	}
	if diff := cmp.Diff([][]string{{"install green"}, {"start green", "health green"}}, [][]string{names(ph.buildPart()), names(ph.startPart())}); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}
}

// One exec argument is a command line; several are quoted each.
func TestExecCommandLine(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"rake db:seed && echo done"}, "rake db:seed && echo done"},
		{[]string{"echo", "a b", "$HOME", "it's"}, `echo 'a b' '$HOME' 'it'\''s'`},
	} {
		got, err := ExecCommandLine(tc.argv)
		if err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.argv, got, err, tc.want)
		}
	}
}
