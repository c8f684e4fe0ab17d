//go:build e2e

package manager

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/scripts/testnodes"
)

// Issue 18: build once, run the same bytes everywhere (spec.build.on one,
// the default). The builder (the first node by name here) builds and
// tests a new commit; the other nodes receive the packed release through
// the control plane, checked by its SHA-256, and skip fetch and build.

// shipBuild is the example's build with a random build id: nodes that
// each built the release would each have their own.
const shipBuild = "node build.js && od -An -N8 -tx1 /dev/urandom | tr -d ' \\n' > build-id"

// releaseFingerprint returns node's build id of commit's release and a
// hash of every file in it (names and contents, the built marker aside).
func (e *faultsEnv) releaseFingerprint(n testnodes.Node, commit string) string {
	e.t.Helper()
	out, err := testnodes.SSH(e.t, n, fmt.Sprintf(`cd /var/lib/bakery/apps/%s/releases/%s* && cat build-id && echo " $(find . -type f ! -name .bakery-built -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"`, e.app, commit))
	if err != nil {
		e.t.Fatalf("%s: release of %s: %v: %s", n.Name, commit[:7], err, out)
	}
	return strings.TrimSpace(out)
}

// logText returns the rollout's log lines that contain substr.
func (e *faultsEnv) logText(ro *api.Rollout, substr string) []string {
	e.t.Helper()
	lines, err := e.st.Logs(e.t.Context(), ro.ID, 0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, l := range lines {
		if strings.Contains(l.Text, substr) {
			out = append(out, l.Node+": "+l.Text)
		}
	}
	return out
}

// stepCount counts ro's steps of kind (the first word of their name).
func stepCount(ro *api.Rollout, kind string) (n int, nodes []string) {
	for _, rn := range ro.Nodes {
		for _, s := range rn.Steps {
			if k, _, _ := strings.Cut(s.Name, " "); k == kind {
				n++
				nodes = append(nodes, rn.Node)
			}
		}
	}
	return n, nodes
}

// flipByte flips one byte of what it reads.
type flipByte struct {
	r    io.Reader
	done bool
}

func (f *flipByte) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && !f.done {
		p[n/2] ^= 0x01
		f.done = true
	}
	return n, err
}

// TestE2EShipBuildOnce: a 3-node rollout with build.on one (the default)
// under continuous requests builds once (one build step, two ship steps)
// and every node runs the same bytes (the same random build id, the same
// files); then an archive corrupted on its way to one node is refused by
// its hash: the rollout fails before any node switches and the old
// version keeps serving everywhere; 0 failed requests throughout.
func TestE2EShipBuildOnce(t *testing.T) {
	nodes := testnodes.RequireNodes(t, 3)[:3]
	e := startFaults(t, "ship-once", nodes, nil)
	c1 := e.commit("v1", map[string]string{"CHANGES": "v1\n"})
	e.deployWith(func(s *api.DeploymentSpec) {
		s.ProgressDeadline = &api.Duration{Duration: 5 * time.Minute}
		s.Build.Build = shipBuild
	})
	e.converge(c1, 3*time.Minute)

	l := startLoadAs(nodes, e.host)
	c2 := e.push("v2")
	took := e.converge(c2, 3*time.Minute)
	l.check(t, "a build-once 3-node rollout")
	ro := e.rolloutOf(c2)
	if ro.State != api.RolloutSucceeded {
		t.Fatalf("rollout of v2: %s %s", ro.State, ro.Message)
	}
	builds, builders := stepCount(ro, "build")
	ships, receivers := stepCount(ro, "ship")
	fetches, _ := stepCount(ro, "fetch")
	t.Logf("v2 on 3 nodes in %v: build on %v, ship to %v, %d fetch", took.Round(time.Millisecond), builders, receivers, fetches)
	if builds != 1 || builders[0] != nodes[0].Name || ships != 2 || fetches != 1 {
		t.Errorf("%d build steps (%v), %d ship steps (%v), %d fetch steps; want one build and fetch on %s, two ships", builds, builders, ships, receivers, fetches, nodes[0].Name)
	}
	for _, line := range e.logText(ro, "shipped ") {
		t.Log(line)
	}
	if got := e.logText(ro, "shipped "); len(got) != 2 {
		t.Errorf("want a \"shipped … in … ms\" line per receiver, got %q", got)
	}
	want := e.releaseFingerprint(nodes[0], c2)
	for _, n := range nodes[1:] {
		if got := e.releaseFingerprint(n, c2); got != want {
			t.Errorf("%s runs other bytes than %s: %s, want %s", n.Name, nodes[0].Name, got, want)
		}
	}
	t.Logf("every node: build id and file hash %s", want)

	// An archive corrupted on its way to the last node.
	victim := nodes[2].Name
	e.mgr.deps.ShipHook = func(node string, r io.Reader) io.Reader {
		if node == victim {
			return &flipByte{r: r}
		}
		return r
	}
	l = startLoadAs(nodes, e.host)
	c3 := e.push("v3")
	d := e.wait("the rollout of v3 failed", 3*time.Minute, func(d *api.Deployment) bool {
		return d.Status.FailedAttempt != nil && d.Status.FailedAttempt.Commit == c3
	})
	e.mgr.deps.ShipHook = nil
	ro = e.rolloutOf(c3)
	t.Logf("v3: rollout %s: %s", ro.State, ro.Message)
	if ro.State != api.RolloutFailed || !strings.Contains(ro.Message, "SHA-256") || !strings.Contains(ro.Message, victim) {
		t.Errorf("rollout of v3: %s %q; want failed on %s, refused by its SHA-256", ro.State, ro.Message, victim)
	}
	if n, who := stepCount(ro, "switch"); n != 0 {
		t.Errorf("%d nodes switched (%v) after a refused archive", n, who)
	}
	for _, line := range e.logText(ro, "refused archive") {
		t.Log(line)
	}
	if !e.serves(c2, nodes...) || d.Status.Commit != c2 {
		t.Errorf("the old version does not serve everywhere (status commit %s)", d.Status.Commit)
	}
	out, _ := testnodes.SSH(t, nodes[2], fmt.Sprintf("ls -d /var/lib/bakery/apps/%s/releases/%s* /var/lib/bakery/apps/%s/.incoming-* 2>/dev/null; true", e.app, c3, e.app))
	if strings.TrimSpace(out) != "" {
		t.Errorf("the refused archive left files on %s: %s", victim, out)
	}
	l.check(t, "a rollout whose archive was refused")
}

// TestE2EShipDocker: a docker app on 2 nodes with build.on one: the
// first node builds the image, the second loads it from the shipped
// archive (docker save), so both run the same image id (two builds would
// differ in their creation time); 0 failed requests.
func TestE2EShipDocker(t *testing.T) {
	nodes := testnodes.RequireNodes(t, 2)[:2]
	app := "ship-docker"
	for _, n := range nodes {
		testnodes.SSH(t, n, fmt.Sprintf(`for s in blue green; do docker rm -f bakery-%[1]s-$s; done >/dev/null 2>&1
imgs=$(docker image ls -q bakery/%[1]s); [ -z "$imgs" ] || docker image rm -f $imgs >/dev/null; true`, app))
	}
	e := startFaults(t, app, nodes, nil)
	c1 := e.commit("v1", map[string]string{"CHANGES": "v1\n"})
	e.deployWith(func(s *api.DeploymentSpec) {
		s.ProgressDeadline = &api.Duration{Duration: 5 * time.Minute}
		s.Runtime, s.Run.Command, s.Build = api.RuntimeDocker, "", api.Build{On: api.BuildOnOne}
		s.Docker = &api.DockerSpec{Dockerfile: "Dockerfile", Network: "bridge"}
	})
	e.converge(c1, 3*time.Minute)
	l := startLoadAs(nodes, e.host)
	c2 := e.push("v2")
	e.converge(c2, 3*time.Minute)
	l.check(t, "a docker build-once rollout to 2 nodes")
	ro := e.rolloutOf(c2)
	builds, builders := stepCount(ro, "build")
	ships, receivers := stepCount(ro, "ship")
	if builds != 1 || ships != 1 {
		t.Errorf("%d build steps (%v), %d ship steps (%v); want one each", builds, builders, ships, receivers)
	}
	for _, line := range append(e.logText(ro, "packed "), e.logText(ro, "shipped ")...) {
		t.Log(line)
	}
	var ids []string
	for _, n := range nodes {
		out, err := testnodes.SSH(t, n, fmt.Sprintf(`docker inspect --format '{{.Image}}' bakery-%s-green`, app))
		if err != nil {
			t.Fatalf("%s: %v %s", n.Name, err, out)
		}
		ids = append(ids, strings.TrimSpace(out))
	}
	t.Logf("image ids: %v", ids)
	if ids[0] == "" || ids[0] != ids[1] {
		t.Errorf("the nodes run different images: %v", ids)
	}
}
