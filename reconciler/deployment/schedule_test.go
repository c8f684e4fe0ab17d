package deployment

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
)

func TestPlanSchedules(t *testing.T) {
	tick := SchedSpec{Name: "tick", Calendar: "*:*:0/5", Command: "date", Concurrency: api.ConcurrencyForbid, TimeoutSec: 60}
	rel1, rel2 := nf.ReleaseID(c1, "build1"), nf.ReleaseID(c2, "build1")
	hash := func(slot, rel string) string { return nf.SchedHash(tick.sched("web", slot, rel), tick.script()) }
	withScheds := func(obs nodescript.Observed, s map[string]nodescript.SchedObservation) nodescript.Observed {
		obs.State.Slots[nf.Blue] = nf.SlotState{Commit: obs.State.Slots[nf.Blue].Commit, Release: rel2, Port: 20000, Revision: 1, SpecHash: "spec2"}
		obs.Schedules = s
		return obs
	}
	for _, c := range []struct {
		name string
		obs  nodescript.Observed
		want []Action
	}{
		{"converged", withScheds(serving(c2, "spec2"), map[string]nodescript.SchedObservation{"tick": {Hash: hash(nf.Blue, rel2)}}), nil},
		{"missing timer", withScheds(serving(c2, "spec2"), nil),
			[]Action{{Type: ActSchedule, Schedule: "tick", Slot: nf.Blue, Release: rel2, Reason: "timer missing"}}},
		{"drifted, and a schedule not in the spec", withScheds(serving(c2, "spec2"), map[string]nodescript.SchedObservation{"tick": {Hash: "x"}, "old": {Hash: "y"}}),
			[]Action{{Type: ActSchedule, Schedule: "tick", Slot: nf.Blue, Release: rel2, Reason: "timer differs from the generated one"},
				{Type: ActUnschedule, Schedule: "old", Reason: "not a schedule of this node"}}},
	} {
		d := desired()
		d.Schedules = []SchedSpec{tick}
		got, err := Plan(d, c.obs)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s: plan (-want +got):\n%s", c.name, diff)
		}
	}
	// A rollout installs the schedules in the new slot's release right
	// after the switch (before the old slot drains).
	d := desired()
	d.Schedules = []SchedSpec{tick}
	obs := serving(c1, "spec1")
	obs.Schedules = map[string]nodescript.SchedObservation{"tick": {Hash: hash(nf.Blue, rel1)}}
	got, err := Plan(d, obs)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range got {
		if a.Type == ActSwitch {
			if want := (Action{Type: ActSchedule, Schedule: "tick", Slot: nf.Green, Release: rel2, Reason: "timer differs from the generated one"}); i+1 >= len(got) || got[i+1] != want {
				t.Fatalf("after the switch: %v, want %v", got[i+1:], want)
			}
		}
	}
	// Removing the app is not done while a schedule is left.
	rm, _ := Plan(Desired{App: "web", Remove: true}, nodescript.Observed{Units: map[string]string{}, Schedules: map[string]nodescript.SchedObservation{"tick": {}}})
	if len(rm) != 1 || rm[0].Type != ActRemove {
		t.Fatalf("remove with a schedule left: %v", rm)
	}
}

func TestChooseSchedNode(t *testing.T) {
	node := func(name string, ready bool) target {
		n := &api.Node{Metadata: api.ObjectMeta{Name: name}}
		if ready {
			n.Status.Conditions = []api.Condition{{Type: api.ConditionReady, Status: api.ConditionTrue}}
		}
		return target{node: n}
	}
	ts := []target{node("a", false), node("b", true), node("c", true)}
	chooseSchedNode(ts)
	if ts[0].schedOne || !ts[1].schedOne || ts[2].schedOne {
		t.Fatalf("want b (the first Ready): %+v", ts)
	}
	ts = []target{node("a", false), node("b", false)}
	chooseSchedNode(ts)
	if !ts[0].schedOne || ts[1].schedOne {
		t.Fatal("with no node Ready, want the first")
	}
	ts = []target{{node: &api.Node{}, remove: true}, node("b", true)}
	chooseSchedNode(ts)
	if ts[0].schedOne || !ts[1].schedOne {
		t.Fatal("a node the app leaves never runs schedules")
	}
	spec := &api.DeploymentSpec{Schedules: []api.Schedule{{Name: "one", Schedule: "*/5 * * * *", Command: "x", Node: "one", Concurrency: "Forbid"},
		{Name: "all", Schedule: "hourly", Command: "y", Node: "all", Concurrency: "Allow", Timeout: &api.Duration{Duration: time.Minute}}}}
	if got := nodeSchedules(spec, ts[1]); len(got) != 2 || got[0].Calendar != "*-*-* *:0/5:00" || got[1].TimeoutSec != 60 {
		t.Fatalf("the chosen node: %+v", got)
	}
	ts[1].schedOne = false
	if got := nodeSchedules(spec, ts[1]); len(got) != 1 || got[0].Name != "all" {
		t.Fatalf("another node: %+v", got)
	}
}

func TestScheduleStatus(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0).UTC()
	spec := []api.Schedule{{Name: "job", Schedule: "hourly", Concurrency: "Forbid"}}
	plan := func(o nodescript.SchedObservation) *rolloutPlan {
		n := &nodeRun{obs: nodescript.AppObservation{Observed: nodescript.Observed{Schedules: map[string]nodescript.SchedObservation{"job": o}}}}
		return &rolloutPlan{targets: []target{{node: &api.Node{Metadata: api.ObjectMeta{Name: "n1"}}}}, runs: []*nodeRun{n}}
	}
	failedRun := nodescript.SchedObservation{Result: "exit-code", ExitStatus: 3, LastStart: t0, Duration: 2 * time.Second, NextRun: t0.Add(time.Hour)}
	st, failed := scheduleStatus(spec, nil, plan(failedRun))
	want := []api.ScheduleStatus{{Name: "job", Calendar: "hourly", Nodes: []string{"n1"}, LastRun: &api.Time{Time: t0}, Node: "n1",
		Result: "failed: exit status 3", Duration: &api.Duration{Duration: 2 * time.Second}, NextRun: &api.Time{Time: t0.Add(time.Hour)}}}
	if diff := cmp.Diff(want, st); diff != "" || len(failed) != 1 {
		t.Fatalf("status (-want +got):\n%s\nfailures %v", diff, failed)
	}
	// The same failed run at the next resync: no second event.
	if _, failed := scheduleStatus(spec, st, plan(failedRun)); len(failed) != 0 {
		t.Fatalf("the same failure raised again: %v", failed)
	}
	// The next run fails too: a new event.
	next := failedRun
	next.LastStart = t0.Add(time.Hour)
	if _, failed := scheduleStatus(spec, st, plan(next)); len(failed) != 1 {
		t.Fatal("a new failed run raised no event")
	}
	running := nodescript.SchedObservation{ServiceState: "activating", LastStart: t0}
	if st, _ := scheduleStatus(spec, nil, plan(running)); st[0].Result != "running" {
		t.Fatalf("running: %+v", st[0])
	}
}
