package deployment

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/internal/testenv"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/rolloutlog"
)

// The image depends on the Dockerfile, build args (build hash) and the
// network (spec hash); systemd specs hash as before.
func TestDockerHashes(t *testing.T) {
	d := &api.Deployment{Spec: api.DeploymentSpec{Runtime: api.RuntimeDocker, Docker: &api.DockerSpec{BuildArgs: map[string]string{"A": "1"}}}}
	d.Default()
	bh, sh := buildHash(&d.Spec), specHash(&d.Spec)
	d.Spec.Docker.BuildArgs["A"] = "2"
	if buildHash(&d.Spec) == bh || specHash(&d.Spec) == sh {
		t.Fatal("a build arg change does not change the build and spec hashes")
	}
	bh, sh = buildHash(&d.Spec), specHash(&d.Spec)
	d.Spec.Docker.Network = "host"
	if buildHash(&d.Spec) != bh || specHash(&d.Spec) == sh {
		t.Fatal("a network change must change the spec hash only")
	}
	sys := &api.DeploymentSpec{Runtime: api.RuntimeSystemd, Build: api.Build{Build: "make"}}
	// Unchanged for systemd: existing deployments must not roll out anew.
	if buildHash(sys) != nf.Hash("", "", "make") {
		t.Fatal("the systemd build hash changed")
	}
}

// stopRecorder is a Runtime whose Start fails and which records stops.
type stopRecorder struct{ stopped []string }

func (*stopRecorder) Install(context.Context, *nodeRun, Action) error { return nil }
func (*stopRecorder) Start(context.Context, *nodeRun, Action) error {
	return errors.New("start failed")
}
func (s *stopRecorder) Stop(_ context.Context, _ *nodeRun, slot string) error {
	s.stopped = append(s.stopped, slot)
	return nil
}
func (*stopRecorder) Remove(context.Context, *nodeRun) error { return nil }

// A failed start of a new slot stops it again; a failed (or superseded)
// repair of the active slot leaves it alone: stopping it could only take
// down what still serves.
func TestFailedStartStopsOnlyANewSlot(t *testing.T) {
	st := testenv.FileStore(t).(Store)
	for _, tc := range []struct {
		slot string
		want []string
	}{{"green", []string{"green"}}, {"blue", nil}} {
		rt := &stopRecorder{}
		r := &Reconciler{Store: st, Runtime: rt}
		ro := &api.Rollout{ID: "x-1-" + tc.slot, Deployment: "x", Nodes: []api.RolloutNode{{Node: "n1"}}}
		if err := st.CreateRollout(t.Context(), ro); err != nil {
			t.Fatal(err)
		}
		n := &nodeRun{node: "n1", app: "x", spec: &api.DeploymentSpec{}, log: func(string, string) {},
			obs: nodescript.AppObservation{Observed: nodescript.Observed{State: &nf.AppState{Active: "blue"}, Units: map[string]string{}}}}
		err := r.runNode(t.Context(), n, []Action{{Type: ActStart, Slot: tc.slot}}, &rolloutlog.Recorder{Store: st, Rollout: ro})
		if err == nil {
			t.Fatal("the failed start was not reported")
		}
		if diff := cmp.Diff(tc.want, rt.stopped); diff != "" {
			t.Errorf("start of %s failed: stops (-want +got):\n%s", tc.slot, diff)
		}
	}
}
