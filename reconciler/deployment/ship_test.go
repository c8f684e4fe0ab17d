package deployment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
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

func TestChooseShip(t *testing.T) {
	type c = shipCandidate
	for _, tc := range []struct {
		name      string
		cands     []shipCandidate
		src       int
		receivers []int
		build     bool
	}{
		{"first by name builds", []c{{name: "a", reachable: true, needs: true}, {name: "b", reachable: true, needs: true}, {name: "c", reachable: true, needs: true}}, 0, []int{1, 2}, true},
		{"the labelled builder builds", []c{{name: "a", reachable: true, needs: true}, {name: "b", reachable: true, needs: true, builder: true}, {name: "c", reachable: true, needs: true}}, 1, []int{0, 2}, true},
		{"an unreachable first node is skipped", []c{{name: "a", needs: true}, {name: "b", reachable: true, needs: true}, {name: "c", reachable: true, needs: true}}, 1, []int{2}, true},
		{"an unreachable builder is skipped", []c{{name: "a", reachable: true, needs: true}, {name: "b", needs: true, builder: true}, {name: "c", reachable: true, needs: true}}, 0, []int{2}, true},
		{"a node that has the release is the source: nothing is built", []c{{name: "a", reachable: true, needs: true}, {name: "b", reachable: true, has: true}, {name: "c", reachable: true, needs: true}}, 1, []int{0, 2}, false},
		{"a new node gets the release of one that has it", []c{{name: "a", reachable: true, has: true}, {name: "b", reachable: true, needs: true}}, 0, []int{1}, false},
		{"one node builds alone: nothing to ship", []c{{name: "a", reachable: true, needs: true}, {name: "b", reachable: true}}, -1, nil, false},
		{"every node has it", []c{{name: "a", reachable: true, has: true}, {name: "b", reachable: true, has: true}}, -1, nil, false},
		{"no node is reachable", []c{{name: "a", needs: true}, {name: "b", needs: true}}, -1, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, receivers, build := chooseShip(tc.cands)
			if src != tc.src || !cmp.Equal(receivers, tc.receivers) || build != tc.build {
				t.Errorf("source %d, receivers %v, build %v; want %d, %v, %v", src, receivers, build, tc.src, tc.receivers, tc.build)
			}
		})
	}
}

func TestShipPlan(t *testing.T) {
	names := func(as []Action) (out []string) {
		for _, a := range as {
			out = append(out, a.String())
		}
		return out
	}
	obs := testObs()
	obs.Releases = nil // not built anywhere
	prepare := splitPlan(testPlan(t, obs)).prepare
	if diff := cmp.Diff([]string{"fetch", "build", "pack", "install green", "start green", "health green"}, names(shipPlan(prepare, "builder"))); diff != "" {
		t.Errorf("builder (-want +got):\n%s", diff)
	}
	rec := shipPlan(prepare, "receiver")
	if diff := cmp.Diff([]string{"ship", "install green", "start green", "health green"}, names(rec)); diff != "" {
		t.Errorf("receiver (-want +got):\n%s", diff)
	}
	if rec[0].Release != nf.ReleaseID(testCommit, testBuildHash) || rec[0].Commit != testCommit {
		t.Errorf("ship step %+v: want the release and commit of the build it replaces", rec[0])
	}
}

// shipExec is a fake node for shipping: pack writes the archive, a
// written file is kept, unpack checks its hash as the script does.
type shipExec struct {
	fakeExec
	archive  []byte
	buildErr error
	mu       *sync.Mutex
	files    map[string][]byte
}

func (e shipExec) Run(ctx context.Context, cmd sshexec.Command) (sshexec.Result, error) {
	switch cmd.Env[nodescript.EnvScript] {
	case nodescript.Build.Name:
		e.f.note("%s build", e.node)
		return sshexec.Result{}, e.buildErr
	case nodescript.Fetch.Name:
		e.f.note("%s fetch", e.node)
	case nodescript.Pack.Name:
		e.f.note("%s pack", e.node)
		_, err := cmd.Stdout.Write(e.archive)
		return sshexec.Result{}, err
	case nodescript.Unpack.Name:
		e.mu.Lock()
		data := e.files[cmd.Env["ARCHIVE"]]
		e.mu.Unlock()
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != cmd.Env["SHA256"] {
			e.f.note("%s refused", e.node)
			return sshexec.Result{ExitCode: nodescript.ExitHashMismatch}, &sshexec.ExitError{Code: nodescript.ExitHashMismatch}
		}
		e.f.note("%s unpack %d", e.node, len(data))
		return sshexec.Result{}, nil
	}
	return e.fakeExec.Run(ctx, cmd)
}

func (e shipExec) WriteFile(_ context.Context, f sshexec.File) error {
	b, err := io.ReadAll(io.LimitReader(f.Reader, f.Size))
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.files[f.Path] = b
	return nil
}

type shipCase struct {
	labels   map[string]map[string]string
	has      map[string]bool  // nodes that have the release already
	buildErr map[string]error // nodes whose build fails
	hook     func(node string, r io.Reader) io.Reader
	on       string
}

// runShip rolls a commit that no node (but those in has) built out to
// nodes through runPhases.
func (f *fleet) runShip(t *testing.T, tc shipCase, nodes ...string) (*api.Rollout, string, error) {
	t.Helper()
	st := testenv.FileStore(t).(Store)
	r := &Reconciler{Store: st, Runtime: f, Ingress: f, ShipHook: tc.hook}
	spec := &helloDeploymentFor("x", "repo").Spec
	spec.Strategy = api.Strategy{Type: api.StrategyBlueGreen, Drain: &api.Duration{}, MaxUnavailable: 1}
	spec.Build.On = tc.on
	ro := &api.Rollout{ID: "x-2-" + strings.ToLower(strings.ReplaceAll(t.Name()[4:], "/", "-")), Deployment: "x"}
	p := &rolloutPlan{}
	var pending []int
	var mu sync.Mutex
	files := map[string][]byte{}
	for i, name := range nodes {
		obs := testObs()
		if !tc.has[name] {
			obs.Releases = nil
		}
		var plan []Action
		for _, a := range testPlan(t, obs) {
			if a.Type != ActFetch { // no git mirror here: what is shipped is what counts
				plan = append(plan, a)
			}
		}
		ro.Nodes = append(ro.Nodes, api.RolloutNode{Node: name, State: api.RolloutPending})
		p.targets = append(p.targets, target{node: &api.Node{Metadata: api.ObjectMeta{Name: name, Labels: tc.labels[name]}}})
		ex := shipExec{fakeExec: fakeExec{f, name}, archive: []byte("the release " + name), buildErr: tc.buildErr[name], mu: &mu, files: files}
		p.runs = append(p.runs, &nodeRun{node: name, app: "x", spec: spec, desired: testDesired(), obs: obs, ex: ex, mirrors: nil, timeout: 0})
		p.plans = append(p.plans, plan)
		p.errs = append(p.errs, nil)
		pending = append(pending, i)
	}
	if err := st.CreateRollout(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	logs := rolloutlog.NewSink(st, ro.ID, r.log())
	defer logs.Close()
	rec := &rolloutlog.Recorder{Store: st, Rollout: ro}
	failedNode, failure := r.runPhases(t.Context(), spec.Strategy, p, pending, logs, rec)
	return ro, failedNode, failure
}

func stepNames(ro *api.Rollout) map[string]string {
	out := map[string]string{}
	for _, n := range ro.Nodes {
		var s []string
		for _, st := range n.Steps {
			s = append(s, strings.Fields(st.Name)[0])
		}
		out[n.Node] = strings.Join(s, " ")
	}
	return out
}

// Three nodes lack the release: the first by name builds and packs it,
// the other two receive it (no build of theirs) and every node switches.
func TestShipBuildsOnce(t *testing.T) {
	f := &fleet{}
	ro, _, failure := f.runShip(t, shipCase{}, "n1", "n2", "n3")
	if failure != nil {
		t.Fatal(failure)
	}
	want := map[string]string{
		"n1": "build pack install start health switch drain stop prune",
		"n2": "ship install start health switch drain stop prune",
		"n3": "ship install start health switch drain stop prune",
	}
	if diff := cmp.Diff(want, stepNames(ro)); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if f.count(" build") != 1 || f.index("n2 unpack 14") < 0 || f.index("n3 unpack 14") < 0 || f.count("switch green") != 3 {
		t.Errorf("want one build, n1's archive unpacked on n2 and n3, three switches:\n%s", strings.Join(f.journal, "\n"))
	}
}

// A node labelled bakery.dev/builder=true builds for the others; a node
// that has the release already is the source and nothing is built;
// build.on each builds everywhere.
func TestShipSource(t *testing.T) {
	t.Run("labelled", func(t *testing.T) {
		f := &fleet{}
		ro, _, failure := f.runShip(t, shipCase{labels: map[string]map[string]string{"n3": {api.BuilderLabel: "true"}}}, "n1", "n2", "n3")
		if failure != nil {
			t.Fatal(failure)
		}
		if got := stepNames(ro); !strings.HasPrefix(got["n3"], "build pack ") || !strings.HasPrefix(got["n1"], "ship ") || !strings.HasPrefix(got["n2"], "ship ") {
			t.Errorf("steps %v: want n3 to build", got)
		}
	})
	t.Run("has-it", func(t *testing.T) {
		f := &fleet{}
		ro, _, failure := f.runShip(t, shipCase{has: map[string]bool{"n2": true}}, "n1", "n2", "n3")
		if failure != nil {
			t.Fatal(failure)
		}
		if f.count(" build") != 0 || f.index("n2 pack") < 0 || f.index("n1 unpack 14") < 0 || f.index("n3 unpack 14") < 0 {
			t.Errorf("want n2's release packed and unpacked on n1 and n3, nothing built:\n%s", strings.Join(f.journal, "\n"))
		}
		if got := stepNames(ro); got["n2"] != "install start health switch drain stop prune" {
			t.Errorf("n2's steps %q", got["n2"])
		}
	})
	t.Run("each", func(t *testing.T) {
		f := &fleet{}
		_, _, failure := f.runShip(t, shipCase{on: api.BuildOnEach}, "n1", "n2", "n3")
		if failure != nil {
			t.Fatal(failure)
		}
		if f.count(" build") != 3 || f.count(" pack") != 0 {
			t.Errorf("want three builds, no pack:\n%s", strings.Join(f.journal, "\n"))
		}
	})
}

// flipper flips one byte of what it reads.
type flipper struct {
	r    io.Reader
	done bool
}

func (f *flipper) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && !f.done {
		p[n/2] ^= 0xff
		f.done = true
	}
	return n, err
}

// An archive corrupted on its way to a node is refused by its hash
// (sent once more, refused again): the rollout fails before any node
// switches, and the other nodes' prepared slots stop again.
func TestShipCorruptedArchiveRefused(t *testing.T) {
	f := &fleet{}
	hook := func(node string, r io.Reader) io.Reader {
		if node == "n3" {
			return &flipper{r: r}
		}
		return r
	}
	ro, failedNode, failure := f.runShip(t, shipCase{hook: hook}, "n1", "n2", "n3")
	if failure == nil || failedNode != "n3" || !strings.Contains(failure.Error(), "SHA-256") {
		t.Fatalf("failure %v on %q, want n3's archive refused by its hash", failure, failedNode)
	}
	if f.count("n3 refused") != 2 || f.count("switch green") != 0 {
		t.Errorf("want two refusals on n3 and no switch:\n%s", strings.Join(f.journal, "\n"))
	}
	if got := nodeStates(ro); got["n3"] != api.RolloutFailed || got["n1"] != api.RolloutCancelled {
		t.Errorf("node states %v", got)
	}
	if ClassifyFailure(ActShip, failure) != FailureRevision {
		t.Errorf("a refused archive is the revision's failure (it is not retried on its own)")
	}
}

// A builder whose tests fail fails the rollout on the builder, before any
// node switches; the receivers fail with it (a revision failure, not a
// wait), and never build.
func TestShipBuilderFails(t *testing.T) {
	f := &fleet{}
	ro, failedNode, failure := f.runShip(t, shipCase{buildErr: map[string]error{"n1": &sshexec.ExitError{Code: 1}}}, "n1", "n2", "n3")
	if failure == nil || failedNode != "n1" {
		t.Fatalf("failure %v on %q, want n1's build", failure, failedNode)
	}
	if f.count(" build") != 1 || f.count("switch green") != 0 || f.count(" pack") != 0 {
		t.Errorf("want one build, no pack, no switch:\n%s", strings.Join(f.journal, "\n"))
	}
	for _, n := range []string{"n2", "n3"} {
		if got := stepNames(ro)[n]; got != "ship" {
			t.Errorf("%s steps %q, want a failed ship step", n, got)
		}
	}
	// A builder that became unreachable: the receivers are waited for too.
	f = &fleet{}
	_, _, failure = f.runShip(t, shipCase{buildErr: map[string]error{"n1": fmt.Errorf("build: %w", sshexec.ErrConnection)}}, "n1", "n2")
	if failure != nil {
		t.Errorf("an unreachable builder failed the rollout: %v", failure)
	}
}
