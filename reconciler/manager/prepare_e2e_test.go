//go:build e2e

package manager

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/scripts/testnodes"
)

// Issue 18: every node prepares a new revision at once (fetch, build and
// test, install, start of the idle slot, health check); only then do the
// switches run, strategy.maxUnavailable nodes at a time. A node that
// fails to prepare switches no node.

// deployWith creates the env's deployment on every node of the env, with
// mutate applied to its spec.
func (e *faultsEnv) deployWith(mutate func(s *api.DeploymentSpec)) {
	e.t.Helper()
	var names []string
	for _, n := range e.nodes {
		names = append(names, n.Name)
	}
	d := helloDeployment(e.repo, names...)
	d.Metadata.Name = e.app
	d.Spec.Ingress.Hosts = []string{e.host}
	mutate(&d.Spec)
	if _, err := e.st.Create(e.t.Context(), d); err != nil {
		e.t.Fatal(err)
	}
}

// rolloutOf returns the newest rollout of commit.
func (e *faultsEnv) rolloutOf(commit string) *api.Rollout {
	e.t.Helper()
	ros, err := e.st.ListRollouts(e.t.Context(), e.app, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ro := range ros {
		if ro.Commit == commit {
			full, err := e.st.GetRollout(e.t.Context(), ro.ID)
			if err != nil {
				e.t.Fatal(err)
			}
			return full
		}
	}
	e.t.Fatalf("no rollout of %s", commit[:7])
	return nil
}

// phaseTimes returns, per node of ro, when its prepare phase started
// (its first step) and ended (its health check), and when its switch
// started (zero: it did not switch).
func phaseTimes(ro *api.Rollout) (prepStart, prepEnd, switchStart map[string]time.Time) {
	prepStart, prepEnd, switchStart = map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	for _, n := range ro.Nodes {
		for _, s := range n.Steps {
			kind, _, _ := strings.Cut(s.Name, " ")
			if s.Start == nil {
				continue
			}
			if _, ok := prepStart[n.Node]; !ok && kind != "switch" {
				prepStart[n.Node] = s.Start.Time
			}
			if kind == "health" && s.End != nil {
				prepEnd[n.Node] = s.End.Time
			}
			if kind == "switch" {
				switchStart[n.Node] = s.Start.Time
			}
		}
	}
	return prepStart, prepEnd, switchStart
}

// prepMillis sums the durations of node's prepare steps in ro (those
// before its switch).
func prepMillis(ro *api.Rollout, node string) int64 {
	var ms int64
	for _, n := range ro.Nodes {
		if n.Node != node {
			continue
		}
		for _, s := range n.Steps {
			if strings.HasPrefix(s.Name, "switch") {
				break
			}
			ms += s.DurationMillis
		}
	}
	return ms
}

// slotsRunning returns how many of the app's two slots run on n.
func (e *faultsEnv) slotsRunning(n testnodes.Node) int {
	e.t.Helper()
	out, _ := testnodes.SSH(e.t, n, fmt.Sprintf("systemctl is-active bakery-%[1]s-blue bakery-%[1]s-green", e.app))
	c := 0
	for _, l := range strings.Fields(out) {
		if l == "active" || l == "activating" {
			c++
		}
	}
	return c
}

// TestE2EPrepareInParallel: a new commit on 3 nodes prepares on all of
// them at once (the rollout's recorded steps overlap), switches only after
// every node prepared, with no failed request; then a commit whose health
// check fails on one node only switches no node: the idle slots the other
// two started are stopped again and the old version serves everywhere.
func TestE2EPrepareInParallel(t *testing.T) {
	nodes := testnodes.RequireNodes(t, 3)[:3]
	e := startFaults(t, "prep-par", nodes, nil)
	c1 := e.commit("v1", map[string]string{"CHANGES": "v1\n"})
	e.deployWith(func(s *api.DeploymentSpec) { s.ProgressDeadline = &api.Duration{Duration: 5 * time.Minute} })
	e.converge(c1, 3*time.Minute)

	l := startLoadAs(nodes, e.host)
	start := time.Now()
	c2 := e.push("v2")
	took := e.converge(c2, 3*time.Minute)
	l.check(t, "a parallel 3-node rollout")

	ro := e.rolloutOf(c2)
	if ro.State != api.RolloutSucceeded {
		t.Fatalf("rollout of v2: %s %s", ro.State, ro.Message)
	}
	prepStart, prepEnd, switchStart := phaseTimes(ro)
	var firstPrepStart, lastPrepEnd, firstSwitch time.Time
	for _, n := range nodes {
		ps, pe, sw := prepStart[n.Name], prepEnd[n.Name], switchStart[n.Name]
		if ps.IsZero() || pe.IsZero() || sw.IsZero() {
			t.Fatalf("%s: prepare %v–%v, switch %v: a phase is missing from the rollout record %+v", n.Name, ps, pe, sw, ro.Nodes)
		}
		t.Logf("%s: prepare %s → %s (%d ms of steps), switch at %s", n.Name, ps.Format("15:04:05"), pe.Format("15:04:05"), prepMillis(ro, n.Name), sw.Format("15:04:05"))
		if firstPrepStart.IsZero() || ps.Before(firstPrepStart) {
			firstPrepStart = ps
		}
		if pe.After(lastPrepEnd) {
			lastPrepEnd = pe
		}
		if firstSwitch.IsZero() || sw.Before(firstSwitch) {
			firstSwitch = sw
		}
	}
	// The prepare phases overlap: their steps took longer, summed over
	// the nodes, than the whole span from the first prepare's start to the
	// last one's end (recorded times have a resolution of one second: the
	// span is given that second). One node after the other, the sum could
	// not exceed the span.
	var sum time.Duration
	for _, n := range nodes {
		sum += time.Duration(prepMillis(ro, n.Name)) * time.Millisecond
	}
	span := lastPrepEnd.Sub(firstPrepStart) + time.Second
	t.Logf("prepare steps: %v summed over the nodes, within a span of at most %v", sum, span)
	if sum <= span {
		t.Errorf("the prepare phases did not overlap: %v of prepare steps within %v", sum, span)
	}
	if firstSwitch.Before(lastPrepEnd) {
		t.Errorf("a node switched at %s before every node prepared (%s)", firstSwitch.Format("15:04:05"), lastPrepEnd.Format("15:04:05"))
	}
	per, _ := stepTimes(t, e.st, ro.ID)
	logStepTimes(t, "parallel prepare", per, len(nodes))
	t.Logf("push → serving v2 on 3 nodes: %v (converged %v)", time.Since(start).Round(10*time.Millisecond), took.Round(10*time.Millisecond))

	// A health check that fails on one node only.
	sick := nodes[1].Name
	server := mustRead(t, e.repo+"/server.js")
	broken := strings.Replace(server, "if (req.url === '/healthz') {",
		fmt.Sprintf("if (req.url === '/healthz' && require('os').hostname() === %q) {\n    res.writeHead(500);\n    res.end('sick\\n');\n    return;\n  }\n  if (req.url === '/healthz') {", sick), 1)
	if broken == server {
		t.Fatal("test setup: the health endpoint was not broken")
	}
	l = startLoadAs(nodes, e.host)
	c3 := e.commit("sick on "+sick, map[string]string{"server.js": broken})
	e.mgr.EnqueueKey(api.KindDeployment + "/" + e.app)
	d := e.wait("the failed attempt of v3", 3*time.Minute, func(d *api.Deployment) bool {
		return d.Status.FailedAttempt != nil && d.Status.FailedAttempt.Commit == c3
	})
	l.check(t, "a rollout that failed to prepare on one node")
	if !strings.Contains(d.Status.FailedAttempt.Reason, sick) || !strings.Contains(d.Status.FailedAttempt.Reason, "health") {
		t.Errorf("failure reason %q does not name %s's health check", d.Status.FailedAttempt.Reason, sick)
	}
	ro = e.rolloutOf(c3)
	if ro.State != api.RolloutFailed {
		t.Errorf("rollout of v3: %s, want failed", ro.State)
	}
	if _, _, sw := phaseTimes(ro); len(sw) != 0 {
		t.Errorf("nodes switched although %s failed to prepare: %v", sick, sw)
	}
	if !e.serves(c2, nodes...) {
		t.Fatal("the old version does not serve on every node after the failed prepare")
	}
	for _, n := range nodes {
		if c := e.slotsRunning(n); c != 1 {
			t.Errorf("%s: %d slots run after the failed prepare, want 1 (the prepared one stopped again)", n.Name, c)
		}
	}
	for _, rn := range ro.Nodes {
		t.Logf("v3 on %s: %s, steps %d", rn.Node, rn.State, len(rn.Steps))
	}
}

// TestE2EProgressDeadline: an app whose health check never passes within
// spec.progressDeadline (it keeps answering 500 for longer than the
// deadline) ends its rollout failed with ProgressDeadlineExceeded; the
// old version keeps serving with no failed request and the new slot is
// stopped again.
func TestE2EProgressDeadline(t *testing.T) {
	nodes := testnodes.RequireNodes(t, 2)[:2]
	e := startFaults(t, "prep-deadline", nodes, nil)
	const deadline = 20 * time.Second
	c1 := e.commit("v1", map[string]string{"CHANGES": "v1\n"})
	e.deployWith(func(s *api.DeploymentSpec) {
		s.ProgressDeadline = &api.Duration{Duration: deadline}
		// Retries for far longer than the deadline: only the deadline
		// can end the health check.
		s.HealthCheck.Retries = 1000
		s.HealthCheck.Interval = &api.Duration{Duration: 200 * time.Millisecond}
	})
	e.converge(c1, 3*time.Minute)

	server := mustRead(t, e.repo+"/server.js")
	broken := strings.Replace(server, "res.writeHead(200, { 'content-type': 'text/plain' });\n    res.end('ok\\n');", "res.writeHead(500);\n    res.end('never ready\\n');", 1)
	if broken == server {
		t.Fatal("test setup: the health endpoint was not broken")
	}
	l := startLoadAs(nodes, e.host)
	c2 := e.commit("never healthy", map[string]string{"server.js": broken})
	e.mgr.EnqueueKey(api.KindDeployment + "/" + e.app)
	start := time.Now()
	d := e.wait("ProgressDeadlineExceeded", deadline+2*time.Minute, func(d *api.Deployment) bool {
		s, r := condStatus(d, api.ConditionDegraded)
		return s == api.ConditionTrue && r == deployment.ReasonDeadlineExceeded && d.Status.FailedAttempt != nil && d.Status.FailedAttempt.Commit == c2
	})
	t.Logf("ProgressDeadlineExceeded %v after the push (deadline %v): %s", time.Since(start).Round(100*time.Millisecond), deadline,
		api.FindCondition(d.Status.Conditions, api.ConditionDegraded).Message)
	l.check(t, "a rollout that ran out of its progress deadline")
	ro := e.rolloutOf(c2)
	if ro.State != api.RolloutFailed || !strings.Contains(ro.Message, "progress deadline") {
		t.Errorf("rollout of v2: %s %q, want failed for the progress deadline", ro.State, ro.Message)
	}
	if d.Status.Commit != c1 || !e.serves(c1, nodes...) {
		t.Fatalf("the old version does not serve after the deadline (status commit %s)", d.Status.Commit)
	}
	for _, n := range nodes {
		if c := e.slotsRunning(n); c != 1 {
			t.Errorf("%s: %d slots run after the deadline, want 1", n.Name, c)
		}
	}
}
