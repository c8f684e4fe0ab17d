package deployment

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// TestPlanProcesses: the new release's processes start after the web
// switch and the old slot's stop before its web unit drains; a converged
// node repairs a stopped instance, a changed replica count and processes
// left running in the idle slot; a worker-only app has no port, start,
// health check, drain or web stop.
func TestPlanProcesses(t *testing.T) {
	rel2 := nf.ReleaseID(c2, "build1")
	d := desired()
	d.Procs = []ProcGoal{{Name: "worker", Replicas: 2}}

	// A new revision: blue serves c1 with two workers.
	obs := serving(c1, "spec1")
	obs.Releases[rel2] = "build1"
	obs.Procs = map[string]map[string]map[int]string{nf.Blue: {"worker": {1: "active", 2: "active"}}}
	got, err := Plan(d, obs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Action{
		{Type: ActInstall, Slot: nf.Green, Commit: c2, Release: rel2, Port: 20001},
		{Type: ActStart, Slot: nf.Green, Commit: c2, Release: rel2, Port: 20001},
		{Type: ActHealth, Slot: nf.Green, Port: 20001},
		{Type: ActSwitch, Slot: nf.Green, Commit: c2, Release: rel2, Port: 20001},
		{Type: ActProcs, Slot: nf.Green, Commit: c2, Release: rel2},
		{Type: ActStopProcs, Slot: nf.Blue, Reason: "replaced"},
		{Type: ActDrain, Slot: nf.Blue},
		{Type: ActStop, Slot: nf.Blue, Reason: "replaced"},
		{Type: ActPrune},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rollout (-want +got):\n%s", diff)
	}

	// Converged web, worker@2 killed and not restarted by systemd.
	obs = serving(c2, "spec2")
	obs.Procs = map[string]map[string]map[int]string{nf.Blue: {"worker": {1: "active", 2: "inactive"}}}
	got, _ = Plan(d, obs)
	want = []Action{{Type: ActProcs, Slot: nf.Blue, Commit: c2, Reason: "process worker@2 is inactive"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("killed worker (-want +got):\n%s", diff)
	}

	// Replicas down from 3 to 2; the idle slot's worker still runs.
	obs.Procs = map[string]map[string]map[int]string{
		nf.Blue:  {"worker": {1: "active", 2: "active", 3: "active"}},
		nf.Green: {"worker": {1: "active"}},
	}
	got, _ = Plan(d, obs)
	want = []Action{
		{Type: ActProcs, Slot: nf.Blue, Commit: c2, Reason: "process worker@3 runs beyond the 2 wanted"},
		{Type: ActStopProcs, Slot: nf.Green, Reason: "inactive slot's processes are running"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("replicas (-want +got):\n%s", diff)
	}

	// A process the spec does not name runs in the active slot.
	obs.Procs = map[string]map[string]map[int]string{nf.Blue: {"worker": {1: "active", 2: "active"}, "old": {1: "active"}}}
	got, _ = Plan(d, obs)
	want = []Action{{Type: ActProcs, Slot: nf.Blue, Commit: c2, Reason: "process old@1 runs beyond the 0 wanted"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stray process (-want +got):\n%s", diff)
	}

	// Converged: nothing to do.
	obs.Procs = map[string]map[string]map[int]string{nf.Blue: {"worker": {1: "active", 2: "active", 3: "inactive"}}}
	if got, _ = Plan(d, obs); len(got) != 0 {
		t.Errorf("converged node plans %v", got)
	}

	// A worker-only app's rollout and its removal.
	d.WorkerOnly, d.SiteHash = true, nil
	obs = serving(c1, "spec1")
	obs.SiteHash, obs.Units = "", map[string]string{}
	obs.State.Slots[nf.Blue] = nf.SlotState{Commit: c1, Revision: 1, SpecHash: "spec1"}
	obs.Releases[rel2] = "build1"
	obs.Procs = map[string]map[string]map[int]string{nf.Blue: {"worker": {1: "active", 2: "active"}}}
	got, err = Plan(d, obs)
	if err != nil {
		t.Fatal(err)
	}
	want = []Action{
		{Type: ActInstall, Slot: nf.Green, Commit: c2, Release: rel2},
		{Type: ActSwitch, Slot: nf.Green, Commit: c2, Release: rel2},
		{Type: ActProcs, Slot: nf.Green, Commit: c2, Release: rel2},
		{Type: ActStopProcs, Slot: nf.Blue, Reason: "replaced"},
		{Type: ActPrune},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("worker-only rollout (-want +got):\n%s", diff)
	}
	d.Remove = true
	obs = serving(c1, "spec1")
	obs.State, obs.SiteHash, obs.Units, obs.Releases = nil, "", map[string]string{}, nil
	obs.Procs = map[string]map[string]map[int]string{nf.Green: {"worker": {1: "active"}}}
	if got, _ = Plan(d, obs); len(got) != 1 || got[0].Type != ActRemove {
		t.Errorf("removal with a worker left plans %v", got)
	}
	obs.Procs[nf.Green]["worker"][1] = "failed"
	if got, _ = Plan(d, obs); len(got) != 0 {
		t.Errorf("removed app with a failed instance still listed plans %v", got)
	}
}
