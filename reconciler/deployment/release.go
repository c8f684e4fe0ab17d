package deployment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/rolloutlog"
	"bakery.dev/bakery/sshexec"
)

// StepRelease names the release command's step in the rollout record
// and log.
const StepRelease = "release"

// releasePlan is a rollout's run of spec.release.
type releasePlan struct {
	command     string
	commandHash string
	timeout     time.Duration
	script      string // its file name in the app's run directory
	// err: whether to run it could not be decided; no node starts.
	err error
}

// releaseError is a failed release command: nothing switches.
type releaseError struct{ err error }

func (e *releaseError) Error() string { return "release command: " + e.err.Error() }
func (e *releaseError) Unwrap() error { return e.err }

// releaseCommandHash identifies a release command (a changed command runs
// again for a commit it ran for).
func releaseCommandHash(command string) string { return nf.Hash("release", command) }

// releaseDecision says whether a rollout runs spec.release: only a
// rollout that starts the new revision on some node (starts, the nodes'
// plans start a slot), not a restart or a repair of drift, and only for a
// commit it did not run for before with the same command (history: the
// deployment's earlier rollouts) — unless the deploy request asks for it
// again (rerun) and it did not run for that very request yet. It returns
// "" to run it, else why not.
func releaseDecision(spec *api.DeploymentSpec, commit, trigger, request string, repair, rerun, starts bool, history []*api.Rollout) string {
	switch {
	case spec.Release == nil:
		return "no release command"
	case !starts:
		return "no node starts the new revision"
	case repair || trigger == api.TriggerDriftRepair:
		return "a repair of drift runs no release command"
	case trigger == api.TriggerRestart:
		return "a restart runs no release command"
	}
	hash := releaseCommandHash(spec.Release.Command)
	for _, ro := range history {
		rr := ro.Release
		if rr == nil || rr.Result != api.ReleaseSucceeded || rr.Commit != commit || rr.CommandHash != hash {
			continue
		}
		if rerun && (request == "" || ro.Request != request) {
			continue
		}
		return fmt.Sprintf("it ran for commit %s in rollout %s", api.ShortCommit(commit), ro.ID)
	}
	return ""
}

// planRelease decides whether the rollout runs spec.release
// (releaseDecision) and records a skip in the rollout.
func (r *Reconciler) planRelease(ctx context.Context, d *api.Deployment, p *rolloutPlan, ro *api.Rollout, pending []int, rec *rolloutlog.Recorder) {
	p.release = nil
	rs := d.Spec.Release
	if rs == nil {
		return
	}
	starts := false
	for _, i := range pending {
		if splitPlan(p.plans[i]).startedSlot() != "" {
			starts = true
		}
	}
	if !starts {
		return
	}
	history, err := r.Store.ListRollouts(ctx, d.Metadata.Name, 0)
	if err != nil {
		// Without its history the command could run twice for a commit:
		// no node starts the new revision; the rollout waits and retries.
		p.release = &releasePlan{err: fmt.Errorf("listing the deployment's rollouts: %w", err)}
		return
	}
	if ro.Release != nil && ro.Release.Result == api.ReleaseSucceeded {
		history = append(history, ro) // a continued rollout that ran it already
	}
	why := releaseDecision(&d.Spec, p.commit, p.trigger, p.request, p.repairOf != nil, p.rerunRelease, starts, history)
	hash := releaseCommandHash(rs.Command)
	if why != "" {
		if ro.Release == nil || ro.Release.Result != api.ReleaseSucceeded {
			rec.SetRelease(&api.ReleaseRun{Commit: p.commit, CommandHash: hash, Result: api.ReleaseSkipped, Message: why, At: api.Now()})
		}
		return
	}
	timeout := api.DefaultReleaseTimeout
	if rs.Timeout != nil {
		timeout = rs.Timeout.Duration
	}
	p.release = &releasePlan{command: rs.Command, commandHash: hash, timeout: timeout,
		script: "release-" + nf.Hash(ro.ID, time.Now().String()) + ".sh"}
}

// releaseNode picks the node the release command runs on: the first
// pending node (by name) whose build part succeeded and that starts a
// slot. -1: none.
func (pr *phaseRun) releaseNode(pending []int) int {
	for _, i := range pending {
		if pr.p.actErrs[i] == nil && pr.ph[i].startedSlot() != "" {
			return i
		}
	}
	return -1
}

// release runs spec.release on one node, between the build part and the
// start part of the prepare phase. A failure is the rollout's (nothing
// switches), except an infrastructure failure (the node could not be
// reached): then every node is waited for and the rollout continues,
// release first, once it can.
func (pr *phaseRun) release(ctx context.Context, pending []int) {
	rp := pr.p.release
	if rp.err != nil {
		pr.waitAll(pending, &stepError{step: StepRelease, class: FailureInfrastructure, err: rp.err})
		return
	}
	i := pr.releaseNode(pending)
	if i < 0 {
		return // every node failed to build: their failures end the rollout
	}
	n := pr.p.runs[i]
	var start Action
	for _, a := range pr.ph[i].prepare {
		if a.Type == ActStart {
			start = a
		}
	}
	n.logf("step release: running the release command once, on this node, in release %s with the %s slot's environment: %s",
		api.ShortCommit(start.Commit), start.Slot, rp.command)
	idx := pr.rec.StepStart(n.node, StepRelease)
	t0 := time.Now()
	err := n.runRelease(ctx, start, rp)
	pr.rec.StepEnd(n.node, idx, err)
	rr := &api.ReleaseRun{Commit: pr.p.commit, CommandHash: rp.commandHash, Rollout: pr.rec.Rollout.ID, Node: n.node,
		Result: api.ReleaseSucceeded, DurationMillis: max(time.Since(t0).Milliseconds(), 1), At: api.Now()}
	if err != nil {
		rr.Result, rr.Message = api.ReleaseFailed, err.Error()
		var ee *sshexec.ExitError
		if errors.As(err, &ee) {
			rr.ExitCode = ee.Code
		}
	}
	pr.rec.SetRelease(rr)
	pr.r.recordRelease(ctx, pr.p, rr)
	if err == nil {
		n.logf("release command succeeded in %s", time.Since(t0).Round(time.Millisecond))
		return
	}
	n.log(api.StreamBakery, fmt.Sprintf("release command failed: %v; no node switches, the old version keeps serving", err))
	if ClassifyFailure(ActBuild, err) == FailureInfrastructure && ctx.Err() == nil {
		// The node could not be reached: wait for it, the others too
		// (none may start the new revision before its release ran).
		pr.waitAll(pending, &stepError{step: StepRelease, class: FailureInfrastructure, err: err})
		return
	}
	pr.rec.NodeState(n.node, api.RolloutFailed)
	pr.fail(i, &stepError{step: StepRelease, class: FailureRevision, err: &releaseError{err: err}})
}

// waitAll records err (an infrastructure failure) for every pending node
// that has none: none starts the new revision, the rollout waits.
func (pr *phaseRun) waitAll(pending []int, err error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, j := range pending {
		if pr.p.actErrs[j] == nil {
			pr.p.actErrs[j] = err
		}
	}
}

// runRelease runs the release command on the node in the new release
// (start's) with the new slot's environment: through the helper's run
// verb as the app's user (systemd), or in a `docker run --rm` of the new
// image (docker).
func (n *nodeRun) runRelease(ctx context.Context, start Action, rp *releasePlan) error {
	in := nodescript.RunInput{App: n.app, Slot: start.Slot, Commit: start.Commit, Release: start.Release, Script: rp.script,
		Command: rp.command, TimeoutSec: max(int(rp.timeout/time.Second), 1), Limits: nf.LimitsOf(n.spec)}
	s := nodescript.RunCommand
	if isDocker(n.spec) {
		s, in.Network = nodescript.DockerRun, n.docker().Network
	}
	cmd, err := s.Command(in)
	if err != nil {
		return err
	}
	cmd.Timeout = rp.timeout + time.Minute // the node stops it after rp.timeout (exit 124)
	cmd.Sink = sshexec.SinkFunc(func(l sshexec.Line) { n.log(l.Stream.String(), l.Text) })
	_, err = n.ex.Run(ctx, cmd)
	var ee *sshexec.ExitError
	if errors.As(err, &ee) && ee.Code == 124 {
		return fmt.Errorf("timed out after %s: %w", rp.timeout, err)
	}
	return err
}

// recordRelease writes the release's run into status.release.
func (r *Reconciler) recordRelease(ctx context.Context, p *rolloutPlan, rr *api.ReleaseRun) {
	name := ""
	if len(p.runs) > 0 {
		name = p.runs[0].app
	}
	if err := r.setStatus(context.WithoutCancel(ctx), name, func(s *api.DeploymentStatus) {
		c := *rr
		s.Release = &c
	}); err != nil {
		r.log().Warn("recording the release command's run", "deployment", name, "err", err)
	}
}
