package deployment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/sshexec"
)

// Which failures are the node's (wait, retry) and which the revision's
// (FailedAttempt, no retry without a change).
func TestClassifyFailure(t *testing.T) {
	conn := fmt.Errorf("run on bakery-agent@10.0.0.2:22: %w: dial tcp: connection refused", sshexec.ErrConnection)
	noSpace := fmt.Errorf("upload bundle: write /var/lib/bakery/apps/web/.incoming.bundle: %w: dd: No space left on device", &sshexec.ExitError{Code: 125, NoSpace: true})
	timeout := fmt.Errorf("%w: %w", sshexec.ErrTimeout, context.DeadlineExceeded)
	exit := &sshexec.ExitError{Code: 1}
	for _, tc := range []struct {
		step ActionType
		err  error
		want FailureClass
	}{
		// The node's, whatever the step.
		{ActFetch, conn, FailureInfrastructure},
		{ActBuild, conn, FailureInfrastructure},
		{ActHealth, conn, FailureInfrastructure},
		{ActSwitch, fmt.Errorf("%w: connection lost", sshexec.ErrConnection), FailureInfrastructure},
		{ActInstall, sshexec.ErrClosed, FailureInfrastructure},
		{ActFetch, fmt.Errorf("connect: %w", sshexec.ErrAuth), FailureInfrastructure},
		{ActFetch, fmt.Errorf("connect: %w", sshexec.ErrHostKeyMismatch), FailureInfrastructure},
		// A full disk, even in the build (npm writing node_modules).
		{ActFetch, noSpace, FailureInfrastructure},
		{ActBuild, &sshexec.ExitError{Code: 1, NoSpace: true}, FailureInfrastructure},
		// A timeout of Bakery's own steps talking to the node.
		{ActFetch, timeout, FailureInfrastructure},
		{ActInstall, timeout, FailureInfrastructure},
		{ActSwitch, fmt.Errorf("%w: %w", sshexec.ErrCanceled, context.Canceled), FailureInfrastructure},
		{ActPrune, context.DeadlineExceeded, FailureInfrastructure},
		// The revision's own: its build and tests, start and health
		// check, by exit status or timeout.
		{ActBuild, exit, FailureRevision},
		{ActBuild, timeout, FailureRevision},
		{ActStart, exit, FailureRevision},
		{ActHealth, fmt.Errorf("health check of port 20001 failed: %w", exit), FailureRevision},
		{ActHealth, timeout, FailureRevision},
		// A step of Bakery's that the node refused (nginx -t failed, a
		// bundle that does not verify): not retried on its own either.
		{ActSwitch, exit, FailureRevision},
		{ActFetch, errors.New("bundle: commit not found"), FailureRevision},
	} {
		if got := ClassifyFailure(tc.step, tc.err); got != tc.want {
			t.Errorf("%s: %v: %s, want %s", tc.step, tc.err, got, tc.want)
		}
	}
}

// wplan is a plan of three nodes: web-1 switched to c2, web-2 failed at
// fetch with err (or could not be observed when observeErr), web-3 runs
// c1.
func wplan(err error, observeErr bool) *rolloutPlan {
	p := &rolloutPlan{commit: c2, revision: 2, specHash: "spec2", trigger: api.TriggerApply}
	obs := func(c string, rev int64) *nodeRun {
		o := serving(c, "spec2")
		o.State.Slots[nf.Blue] = nf.SlotState{Commit: c, Port: 20000, Revision: rev, SpecHash: "spec2"}
		return &nodeRun{spec: &api.DeploymentSpec{}, obs: nodescript.AppObservation{Observed: o}, desired: Desired{Commit: c2}}
	}
	for i, name := range []string{"web-1", "web-2", "web-3"} {
		p.targets = append(p.targets, target{node: &api.Node{Metadata: api.ObjectMeta{Name: name}}})
		p.plans = append(p.plans, nil)
		p.errs = append(p.errs, nil)
		switch i {
		case 0:
			p.runs = append(p.runs, obs(c2, 2))
		default:
			p.runs = append(p.runs, obs(c1, 1))
		}
	}
	p.actErrs = make([]error, 3)
	if observeErr {
		p.runs[1], p.errs[1] = nil, err
	} else {
		p.actErrs[1] = &stepError{step: ActFetch, class: ClassifyFailure(ActFetch, err), err: err}
	}
	return p
}

func condOf(s *api.DeploymentStatus, typ string) api.Condition {
	if c := api.FindCondition(s.Conditions, typ); c != nil {
		return *c
	}
	return api.Condition{}
}

// An infrastructure failure of one node leaves the rollout running and
// waiting for it: no FailedAttempt, the revision current, Progressing
// WaitingForNode naming the node and the error, Ready=False, Degraded
// only after the progress deadline counted from status.waiting.since
// (which later reconciles keep); a revision failure keeps today's rule.
func TestWaitingStatus(t *testing.T) {
	ctx := t.Context()
	conn := fmt.Errorf("%w: dial tcp 10.0.0.2:22: connection refused", sshexec.ErrConnection)
	d := &api.Deployment{Spec: api.DeploymentSpec{ProgressDeadline: &api.Duration{Duration: time.Minute}}}
	p := wplan(conn, false)
	e := classify(ctx, ctx, d, p, nil, "")
	if e.state != api.RolloutRunning || e.reason != ReasonWaitingForNode || !strings.Contains(e.msg, "node web-2: fetch: ") {
		t.Fatalf("classify: %s %s %q; want running, WaitingForNode, naming web-2", e.state, e.reason, e.msg)
	}
	e.ro = &api.Rollout{ID: "web-2-abcd"}
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	s := api.DeploymentStatus{Commit: c1, Revision: 1, SpecHash: "spec2",
		FailedAttempt: &api.FailedAttempt{Commit: "0000000000000000000000000000000000000000", SpecHash: "spec2"},
		Nodes:         []api.NodeAppStatus{{Node: "web-2", Commit: c1, Revision: 1}}}
	o := &outcome{gen: 3, ending: endRollout, plan: p, rollout: e, deadline: time.Minute, now: t0}
	o.apply(&s)
	if s.FailedAttempt != nil || s.Commit != c2 || s.Revision != 2 || s.ObservedGeneration != 3 {
		t.Fatalf("waiting status: failedAttempt %+v, commit %s revision %d", s.FailedAttempt, s.Commit, s.Revision)
	}
	if w := s.Waiting; w == nil || w.Rollout != "web-2-abcd" || !w.Since.Equal(t0) || len(w.Nodes) != 1 || w.Nodes[0] != "web-2" {
		t.Fatalf("status.waiting %+v", s.Waiting)
	}
	if c := condOf(&s, api.ConditionProgressing); c.Status != api.ConditionTrue || c.Reason != ReasonWaitingForNode || !strings.Contains(c.Message, "connection refused") {
		t.Fatalf("Progressing %+v", c)
	}
	if c := condOf(&s, api.ConditionReady); c.Status != api.ConditionFalse {
		t.Fatalf("Ready %+v", c)
	}
	if c := condOf(&s, api.ConditionDegraded); c.Status != api.ConditionFalse {
		t.Fatalf("Degraded before the deadline: %+v", c)
	}
	if s.CurrentRollout == nil || s.CurrentRollout.State != api.RolloutRunning {
		t.Fatalf("current rollout %+v; want running (it goes on)", s.CurrentRollout)
	}
	if s.Nodes[1].Message == "" || s.Nodes[1].Commit != c1 || s.Nodes[0].Revision != 2 {
		t.Fatalf("status.nodes %+v", s.Nodes)
	}
	if s.Mixed == nil || !s.Mixed.Since.Equal(t0) || o.mixedMsg != "" {
		t.Fatalf("mixed %+v, warning %q", s.Mixed, o.mixedMsg)
	}

	// Later reconciles: the node still cannot be observed. It keeps what
	// it was last seen running; the wait's start stays; past the
	// deadline, Degraded and one MixedVersions warning.
	p = wplan(conn, true)
	for i, at := range []time.Duration{30 * time.Second, 61 * time.Second, 90 * time.Second} {
		o = &outcome{gen: 3, ending: endWaiting, plan: p, deadline: time.Minute, now: t0.Add(at)}
		nodes, errs := p.waiting()
		o.wait.nodes, o.wait.rollout = nodes, "web-2-abcd"
		o.wait.reason, o.wait.msg = waitReason(nodes, errs)
		o.apply(&s)
		if !s.Waiting.Since.Equal(t0) {
			t.Fatalf("the wait's start moved: %v", s.Waiting.Since)
		}
		degraded := condOf(&s, api.ConditionDegraded)
		if want := at > time.Minute; (degraded.Status == api.ConditionTrue) != want || want && degraded.Reason != ReasonDeadlineExceeded {
			t.Fatalf("after %v: Degraded %+v", at, degraded)
		}
		if n := s.Nodes[1]; n.Commit != c1 || n.Healthy || !strings.HasPrefix(n.Message, "unreachable: ") {
			t.Fatalf("after %v: the unreachable node's status %+v", at, n)
		}
		if (o.mixedMsg != "") != (i == 1) {
			t.Fatalf("after %v: MixedVersions %q; want it once, after the deadline", at, o.mixedMsg)
		}
	}
	if s.FailedAttempt != nil {
		t.Fatalf("failed attempt while waiting: %+v", s.FailedAttempt)
	}

	// The node back, the rollout finished: converged, no wait, no mix.
	p = wplan(nil, false)
	p.actErrs[1], p.runs[1], p.runs[2] = nil, p.runs[0], p.runs[0]
	e = classify(ctx, ctx, d, p, nil, "")
	e.ro = &api.Rollout{ID: "web-2-abcd"}
	o = &outcome{gen: 3, ending: endRollout, plan: p, rollout: e, deadline: time.Minute, now: t0.Add(2 * time.Minute)}
	o.apply(&s)
	if s.Waiting != nil || s.Mixed != nil || !api.IsTrue(s.Conditions, api.ConditionReady) || api.IsTrue(s.Conditions, api.ConditionDegraded) {
		t.Fatalf("after the node is back: waiting %+v, mixed %+v, conditions %+v", s.Waiting, s.Mixed, s.Conditions)
	}

	// A full disk: the reason names it.
	noSpace := fmt.Errorf("upload bundle: %w: dd: error writing 'standard output': No space left on device", &sshexec.ExitError{Code: 125, NoSpace: true})
	e = classify(ctx, ctx, d, wplan(noSpace, false), nil, "")
	if e.state != api.RolloutRunning || e.reason != ReasonNodeDiskFull || !strings.Contains(e.msg, "node web-2 (disk full): fetch: upload bundle") {
		t.Fatalf("disk full: %s %s %q", e.state, e.reason, e.msg)
	}

	// A revision failure: today's rule.
	exit := &sshexec.ExitError{Code: 1}
	p = wplan(nil, false)
	p.actErrs[1] = &stepError{step: ActBuild, class: ClassifyFailure(ActBuild, exit), err: exit}
	e = classify(ctx, ctx, d, p, p.actErrs[1], "web-2")
	if e.state != api.RolloutFailed || e.reason != ReasonRolloutFailed {
		t.Fatalf("revision failure: %s %s", e.state, e.reason)
	}
}
