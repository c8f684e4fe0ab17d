package deployment

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/internal/testenv"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/rolloutlog"
	"bakery.dev/bakery/sshexec"
)

// The plan of a node that runs an older commit splits at its switch.
func TestSplitPlan(t *testing.T) {
	names := func(as []Action) (out []string) {
		for _, a := range as {
			out = append(out, a.String())
		}
		return out
	}
	ph := splitPlan(testPlan(t, testObs()))
	got := [][]string{names(ph.prepare), names(ph.swap), names(ph.finish)}
	want := [][]string{{"install green", "start green", "health green"}, {"switch green"}, {"drain blue", "stop blue (replaced)", "prune"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("phases (-want +got):\n%s", diff)
	}
	// A plan without a switch (a drift repair, a removal) touches what
	// serves: all of it runs in the switch batches.
	repair := []Action{{Type: ActStart, Slot: "blue"}, {Type: ActHealth, Slot: "blue"}}
	if ph := splitPlan(repair); len(ph.prepare) != 0 || len(ph.finish) != 0 || len(ph.swap) != 2 {
		t.Errorf("a repair splits into %+v", ph)
	}
}

func testObs() nodescript.AppObservation {
	rel := nf.ReleaseID(testCommit, testBuildHash)
	return nodescript.AppObservation{Observed: nodescript.Observed{
		State: &nf.AppState{App: "x", Active: "blue", Slots: map[string]nf.SlotState{
			"blue": {Commit: strings.Repeat("b", 40), Release: "old", Port: 9000}}},
		Units:    map[string]string{"blue": "active"},
		Releases: map[string]string{rel: testBuildHash},
	}}
}

const testCommit = "1111111111111111111111111111111111111111"

// testBuildHash is the build hash of testDesired's release.
const testBuildHash = "0123456789abcdef"

func testDesired() Desired {
	return Desired{App: "x", Commit: testCommit, Revision: 2, BuildHash: testBuildHash, SpecHash: "sh", PortMin: 9000, PortMax: 9100, KeepReleases: 5}
}

func testPlan(t *testing.T, obs nodescript.AppObservation) []Action {
	t.Helper()
	plan, err := Plan(testDesired(), obs.Observed)
	if err != nil {
		t.Error(err)
	}
	return plan
}

// fleet is a set of fake nodes: a Runtime, an Ingress and an Executor
// per node that record what happened in one journal.
type fleet struct {
	mu      sync.Mutex
	journal []string // "n1 start green", "n2 switch green", …
	// inPrepare counts the nodes inside Start now; peak is its maximum.
	inPrepare, peak int
	// startGate, when set, holds every Start until it is closed.
	startGate chan struct{}
	// stopGate, when set, holds the stop of a replaced (old) slot until
	// it is closed.
	stopGate chan struct{}
	// healthErr fails a node's health check.
	healthErr map[string]error
	// release, when set, is the rollout's release command; releaseErr
	// is what running it returns.
	release    *releasePlan
	releaseErr error
}

func (f *fleet) note(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.journal = append(f.journal, fmt.Sprintf(format, args...))
}

func (f *fleet) count(suffix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := 0
	for _, e := range f.journal {
		if strings.HasSuffix(e, suffix) {
			c++
		}
	}
	return c
}

func (f *fleet) index(entry string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, e := range f.journal {
		if e == entry {
			return i
		}
	}
	return -1
}

func (f *fleet) Install(_ context.Context, n *nodeRun, a Action) error {
	f.note("%s install %s", n.node, a.Slot)
	return nil
}
func (f *fleet) Start(_ context.Context, n *nodeRun, a Action) error {
	f.mu.Lock()
	f.inPrepare++
	f.peak = max(f.peak, f.inPrepare)
	f.mu.Unlock()
	if f.startGate != nil {
		<-f.startGate
	}
	f.mu.Lock()
	f.inPrepare--
	f.mu.Unlock()
	f.note("%s start %s", n.node, a.Slot)
	return nil
}
func (f *fleet) Stop(_ context.Context, n *nodeRun, slot string) error {
	if f.stopGate != nil && n.obs.State.Active != slot {
		<-f.stopGate // the old slot, after the switch
	}
	f.note("%s stop %s", n.node, slot)
	return nil
}
func (*fleet) Remove(context.Context, *nodeRun) error { return nil }

func (f *fleet) Switch(_ context.Context, n *nodeRun, slot string, _ int) error {
	f.note("%s switch %s", n.node, slot)
	return nil
}
func (*fleet) Certificate(context.Context, *nodeRun, string) error { return nil }
func (*fleet) Renew(context.Context, *nodeRun, string) error       { return nil }
func (*fleet) Hash(*nodeRun, string, int) string                   { return "" }

// fakeExec is a node's Executor: its health check answers from
// fleet.healthErr, files are written nowhere.
type fakeExec struct {
	f    *fleet
	node string
}

func (e fakeExec) Run(_ context.Context, cmd sshexec.Command) (sshexec.Result, error) {
	if cmd.Env[nodescript.EnvScript] == nodescript.Health.Name {
		e.f.note("%s health", e.node)
		return sshexec.Result{}, e.f.healthErr[e.node]
	}
	if cmd.Env[nodescript.EnvScript] == nodescript.RunCommand.Name {
		e.f.note("%s release %s in %s", e.node, cmd.Env["SLOT"], cmd.Env["RELEASE"])
		return sshexec.Result{}, e.f.releaseErr
	}
	return sshexec.Result{}, nil
}
func (fakeExec) WriteFile(context.Context, sshexec.File) error { return nil }
func (fakeExec) Close() error                                  { return nil }

// run rolls testPlan out to nodes with strategy s through runPhases.
func (f *fleet) run(t *testing.T, s api.Strategy, nodes ...string) (*api.Rollout, *rolloutPlan, string, error) {
	t.Helper()
	st := testenv.FileStore(t).(Store)
	r := &Reconciler{Store: st, Runtime: f, Ingress: f}
	spec := &helloDeploymentFor("x", "repo").Spec
	s.Type, s.Drain = api.StrategyBlueGreen, &api.Duration{}
	spec.Strategy = s
	ro := &api.Rollout{ID: "x-2-" + strings.ToLower(strings.ReplaceAll(t.Name()[4:], "/", "-")), Deployment: "x"}
	p := &rolloutPlan{release: f.release}
	var pending []int
	for i, name := range nodes {
		ro.Nodes = append(ro.Nodes, api.RolloutNode{Node: name, State: api.RolloutPending})
		obs := testObs()
		p.targets = append(p.targets, target{node: &api.Node{Metadata: api.ObjectMeta{Name: name}}})
		p.runs = append(p.runs, &nodeRun{node: name, app: "x", spec: spec, desired: testDesired(), obs: obs, ex: fakeExec{f, name}})
		p.plans = append(p.plans, testPlan(t, obs))
		p.errs = append(p.errs, nil)
		pending = append(pending, i)
	}
	if err := st.CreateRollout(t.Context(), ro); err != nil {
		return nil, nil, "", err // run may be called from another goroutine: no t.Fatal
	}
	logs := rolloutlog.NewSink(st, ro.ID, r.log())
	defer logs.Close()
	rec := &rolloutlog.Recorder{Store: st, Rollout: ro}
	failedNode, failure := r.runPhases(t.Context(), s, p, pending, logs, rec)
	return ro, p, failedNode, failure
}

func nodeStates(ro *api.Rollout) map[string]string {
	out := map[string]string{}
	for _, n := range ro.Nodes {
		out[n.Node] = n.State
	}
	return out
}

// A node whose health check fails fails the rollout before any node
// switches, and the other nodes' prepared slots are stopped again.
func TestFailedPrepareSwitchesNothing(t *testing.T) {
	f := &fleet{healthErr: map[string]error{"n2": &sshexec.ExitError{Code: 1}}}
	ro, _, failedNode, failure := f.run(t, api.Strategy{MaxUnavailable: 1}, "n1", "n2", "n3")
	if failure == nil || failedNode != "n2" {
		t.Fatalf("failure %v on %q, want n2's health check", failure, failedNode)
	}
	if c := f.count("switch green"); c != 0 {
		t.Errorf("%d nodes switched after a failed prepare:\n%s", c, strings.Join(f.journal, "\n"))
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if f.index(n+" stop green") < 0 {
			t.Errorf("%s: the prepared green slot was not stopped:\n%s", n, strings.Join(f.journal, "\n"))
		}
		if f.index(n+" stop blue") >= 0 {
			t.Errorf("%s: the serving blue slot was stopped", n)
		}
	}
	want := map[string]string{"n1": api.RolloutCancelled, "n2": api.RolloutFailed, "n3": api.RolloutCancelled}
	if diff := cmp.Diff(want, nodeStates(ro)); diff != "" {
		t.Errorf("node states (-want +got):\n%s", diff)
	}
}

// A node that cannot be reached while preparing is waited for; the
// others do not wait for it: they switch (issue 17).
func TestUnreachableNodeDoesNotHoldPrepareBack(t *testing.T) {
	f := &fleet{healthErr: map[string]error{"n2": fmt.Errorf("health: %w", sshexec.ErrConnection)}}
	_, p, _, failure := f.run(t, api.Strategy{MaxUnavailable: 1}, "n1", "n2", "n3")
	if failure != nil {
		t.Fatalf("an infrastructure failure failed the rollout: %v", failure)
	}
	if f.index("n1 switch green") < 0 || f.index("n3 switch green") < 0 || f.index("n2 switch green") >= 0 {
		t.Errorf("want n1 and n3 switched, n2 not:\n%s", strings.Join(f.journal, "\n"))
	}
	if nodes, _ := p.waiting(); !cmp.Equal(nodes, []string{"n2"}) {
		t.Errorf("waiting for %v, want n2", nodes)
	}
}

// Every node prepares at once by default; maxParallel bounds how many.
func TestMaxParallelBoundsPrepare(t *testing.T) {
	for _, tc := range []struct{ maxParallel, want int }{{0, 4}, {2, 2}, {1, 1}} {
		t.Run(fmt.Sprint(tc.maxParallel), func(t *testing.T) {
			f := &fleet{startGate: make(chan struct{})}
			done := make(chan error, 1)
			go func() {
				_, _, _, err := f.run(t, api.Strategy{MaxUnavailable: 1, MaxParallel: tc.maxParallel}, "n1", "n2", "n3", "n4")
				done <- err
			}()
			testenv.Eventually(t, fmt.Sprintf("%d nodes starting their slot at once", tc.want), func() bool {
				f.mu.Lock()
				defer f.mu.Unlock()
				return f.inPrepare == tc.want
			})
			close(f.startGate)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if f.peak != tc.want {
				t.Errorf("%d nodes prepared at once, want %d", f.peak, tc.want)
			}
			if tc.maxParallel == 1 { // one after the other, in order
				var starts []string
				for _, e := range f.journal {
					if strings.HasSuffix(e, " start green") {
						starts = append(starts, strings.Fields(e)[0])
					}
				}
				if diff := cmp.Diff([]string{"n1", "n2", "n3", "n4"}, starts); diff != "" {
					t.Errorf("prepare order (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// The switches follow maxUnavailable, after every node prepared; the
// next batch does not wait for the previous batch's drain and stop, and
// the rollout ends only after every old slot stopped.
func TestSwitchBatches(t *testing.T) {
	f := &fleet{stopGate: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, _, _, err := f.run(t, api.Strategy{MaxUnavailable: 2}, "n1", "n2", "n3", "n4")
		done <- err
	}()
	testenv.Eventually(t, "every node switched while the old slots still drain", func() bool { return f.count("switch green") == 4 })
	select {
	case err := <-done:
		t.Fatalf("the rollout ended (%v) before the old slots stopped", err)
	default:
	}
	close(f.stopGate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lastHealth, firstSwitch := -1, len(f.journal)
	for i, e := range f.journal {
		if strings.HasSuffix(e, " health") {
			lastHealth = i
		}
		if strings.HasSuffix(e, " switch green") {
			firstSwitch = min(firstSwitch, i)
		}
	}
	if lastHealth > firstSwitch {
		t.Errorf("a node switched before every node prepared:\n%s", strings.Join(f.journal, "\n"))
	}
	// Batches of two: n3 and n4 switch after n1 and n2 did.
	for _, later := range []string{"n3", "n4"} {
		for _, first := range []string{"n1", "n2"} {
			if f.index(later+" switch green") < f.index(first+" switch green") {
				t.Errorf("%s switched before %s:\n%s", later, first, strings.Join(f.journal, "\n"))
			}
		}
	}
	if c := f.count("stop blue"); c != 4 {
		t.Errorf("%d old slots stopped, want 4", c)
	}
}
