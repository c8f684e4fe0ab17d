package deployment

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/rolloutlog"
)

func TestParseDockerObservation(t *testing.T) {
	c1, c2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	out := `state {"version": 1, "app": "web", "active": "green", "dockerized": true, "slots": {"blue": {"commit": "` + c1 + `", "release": "` + c1 + `-h", "port": 20000}, "green": {"commit": "` + c2 + `", "release": "` + c2 + `-h", "port": 20001}}}
unit blue inactive
unit green inactive
site -
release ` + c1 + `-h h
release ` + c2 + `-h h
docker
image ` + c2 + `-h
container /bakery-web-blue exited - bakery/web:` + c1 + `-h ` + c1 + ` 3
container /bakery-web-green running healthy bakery/web:` + c2 + `-h ` + c2 + ` 4
`
	o, err := ParseAppObservation(out)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Docker {
		t.Fatal("docker section not seen")
	}
	if diff := cmp.Diff(map[string]string{"blue": "exited", "green": "active"}, o.Units); diff != "" {
		t.Fatalf("units (-want +got):\n%s", diff)
	}
	// blue's image is gone: its release counts as not built.
	if diff := cmp.Diff(map[string]string{c1 + "-h": "", c2 + "-h": "h"}, o.Releases); diff != "" {
		t.Fatalf("releases (-want +got):\n%s", diff)
	}
	if g := o.Containers["green"]; g.Health != "healthy" || g.Revision != "4" || g.Image != "bakery/web:"+c2+"-h" {
		t.Fatalf("green container %+v", g)
	}

	// Drift: the active container removed, or replaced by a stranger, or unhealthy.
	for _, tc := range []struct{ line, want string }{
		{"", "absent"},
		{"container /bakery-web-green running - bakery/web:x " + c1 + " 4\n", "replaced"},
		{"container /bakery-web-green running unhealthy bakery/web:x " + c2 + " 4\n", "unhealthy"},
		{"container /bakery-web-green restarting - bakery/web:x " + c2 + " 4\n", "activating"},
	} {
		cut := out[:strings.Index(out, "container /bakery-web-green")] + tc.line
		o, err := ParseAppObservation(cut)
		if err != nil {
			t.Fatal(err)
		}
		if o.Units["green"] != tc.want {
			t.Errorf("%q: green is %q, want %q", tc.line, o.Units["green"], tc.want)
		}
	}

	if _, err := ParseAppObservation("docker-error permission denied while trying to connect to the Docker daemon socket\n"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("docker error: %v", err)
	}
	if _, err := ParseAppObservation("container /bakery-web-blue exited\n"); err == nil {
		t.Fatal("a short container line was accepted")
	}
}

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
	st := openStore(t).(Store)
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
			obs: AppObservation{Observed: Observed{State: &nf.AppState{Active: "blue"}, Units: map[string]string{}}}}
		err := r.runNode(t.Context(), n, []Action{{Type: ActStart, Slot: tc.slot}}, &rolloutlog.Recorder{Store: st, Rollout: ro})
		if err == nil {
			t.Fatal("the failed start was not reported")
		}
		if diff := cmp.Diff(tc.want, rt.stopped); diff != "" {
			t.Errorf("start of %s failed: stops (-want +got):\n%s", tc.slot, diff)
		}
	}
}
