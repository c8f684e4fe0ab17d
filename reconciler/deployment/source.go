package deployment

import (
	"context"
	"fmt"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// lastGoodRepairable reports whether, while s.FailedAttempt stands, the
// last good revision (s.Commit, s.Revision, s.SpecHash) may be kept alive
// by drift repairs. Only when a new commit failed under the spec the last
// good revision runs with: its slots, site and health check are then
// still what the current spec generates. A failed spec change (the
// attempt's spec hash differs) is not repaired: the old spec is not kept
// (only its hash), and starting containers or writing sites from the new
// spec would apply the failed change in part. Neither is a failed drift
// repair of the last good revision itself (the attempt's commit is
// s.Commit): that would retry the failed revision.
func lastGoodRepairable(s *api.DeploymentStatus) bool {
	fa := s.FailedAttempt
	return fa != nil && s.Revision > 0 && s.Commit != "" && fa.Commit != s.Commit && fa.SpecHash == s.SpecHash
}

// revision is what the source step found: the commit and the spec
// revision the reconcile brings the nodes to, and why.
type revision struct {
	env    resolvedEnv
	commit string
	// pin is the action's commit pin that applies to this generation
	// (nil: none, or the spec changed since the action: the spec wins).
	pin *api.CommitPin
	// restart: a restart request is not carried out yet.
	restart bool

	// Set by decide.
	revision            int64
	specHash, buildHash string
	trigger, by         string
	deployRequest       string // the deploy request carried out ("": none)
	rerunRelease        bool   // it asks to run spec.release again
	// rerunSlot: the revision that runs rolls out to a new slot for the
	// rerun of its release command.
	rerunSlot bool
	request   string // the action request carried out ("": none; see cause)
	// repairOf, when set, is the failed attempt that stands while the
	// last good revision is kept alive (see lastGoodRepairable).
	repairOf *api.FailedAttempt
	// wait: this revision failed before; nothing is done until a new
	// commit, a spec change or a manual action.
	wait bool
}

// resolveSource resolves the deployment's secrets and the commit it runs:
// the spec's pinned commit, an action's pin, or what its ref names now.
func (r *Reconciler) resolveSource(ctx context.Context, d *api.Deployment, o *outcome) (*revision, error) {
	renv, err := resolveEnv(ctx, r.Store, r.Keyring, &d.Spec)
	if err != nil {
		o.ending, o.msg = endSecretUnavailable, err.Error()
		return nil, fmt.Errorf("secrets: %w", err)
	}
	rv := &revision{env: renv, pin: d.Status.Pin}
	pinned := d.Spec.Source.Commit
	if rv.pin != nil && rv.pin.Generation != d.Metadata.Generation {
		rv.pin = nil // the spec changed since the action: the spec wins
	}
	if rv.pin != nil {
		pinned = rv.pin.Commit
	}
	rv.restart = d.Status.Restart != "" && d.Status.Restart != d.Status.RestartDone
	head := ""
	if rv.pin != nil && d.Spec.Source.Commit == "" {
		// While an action's pin holds, the same fetch also says where the
		// followed ref is now (watchPin).
		rv.commit, head, err = r.Mirrors.ResolveWithHead(ctx, d.Spec.Source.Repo, d.Spec.Source.Ref, pinned)
	} else {
		rv.commit, err = r.Mirrors.Resolve(ctx, d.Spec.Source.Repo, d.Spec.Source.Ref, pinned)
	}
	if err != nil {
		o.ending, o.msg = endSourceUnavailable, err.Error()
		return nil, fmt.Errorf("resolve source: %w", err)
	}
	r.watchPin(ctx, d, rv.pin, head)
	return rv, nil
}

// Reasons of condition Pinned.
const (
	ReasonRolledBack = "RolledBack"
	ReasonRedeployed = "Redeployed"
)

// pinnedCondition returns condition Pinned for pin p holding deployment
// name (with spec) at generation gen, or nil when no pin holds.
func pinnedCondition(p *api.CommitPin, name string, spec *api.DeploymentSpec, gen int64) *api.Condition {
	if p == nil || p.Generation != gen {
		return nil
	}
	resume := fmt.Sprintf("`bakery rollout resume deployment/%s` (or `bakery deploy %s`) follows %s again", name, name, followed(spec))
	c := &api.Condition{Type: api.ConditionPinned, Status: api.ConditionTrue, Reason: ReasonRedeployed, ObservedGeneration: gen,
		Message: fmt.Sprintf("redeployed at commit %s: new commits are not rolled out; %s", api.ShortCommit(p.Commit), resume)}
	if p.Reason == api.TriggerRollback {
		c.Reason = ReasonRolledBack
		c.Message = fmt.Sprintf("rolled back to revision %d (commit %s): new commits are not rolled out; %s", p.Revision, api.ShortCommit(p.Commit), resume)
		if !p.SpecRestored {
			c.Message += fmt.Sprintf(" (revision %d has no recorded spec: only its commit was restored, the spec stayed)", p.Revision)
		}
	}
	return c
}

// setPinnedCondition sets condition Pinned as s.Pin says (removing it
// when no pin holds generation gen) and reports whether it changed.
func setPinnedCondition(s *api.DeploymentStatus, name string, spec *api.DeploymentSpec, gen int64) bool {
	want := pinnedCondition(s.Pin, name, spec, gen)
	old := api.FindCondition(s.Conditions, api.ConditionPinned)
	switch {
	case want == nil && old == nil:
		return false
	case want == nil:
		api.RemoveCondition(&s.Conditions, api.ConditionPinned)
		return true
	case old != nil && old.Status == want.Status && old.Reason == want.Reason && old.Message == want.Message && old.ObservedGeneration == want.ObservedGeneration:
		return false
	}
	api.SetCondition(&s.Conditions, *want)
	return true
}

// watchPin keeps what the status says of an action's pin true: condition
// Pinned while it holds (gone once the spec changed), and, when the
// followed ref moved to a commit the pin keeps from rolling out, one
// event PushIgnored naming it. Pin.RefHead remembers the last commit
// seen, so that each commit is reported once, not at every resync; the
// ref's commit first seen under a pin (the one rolled back from) is only
// remembered. head is the commit the followed ref names now (read by the
// reconcile's one fetch; "": unknown). Failures are logged: this never
// fails a reconcile.
func (r *Reconciler) watchPin(ctx context.Context, d *api.Deployment, pin *api.CommitPin, head string) {
	name, gen := d.Metadata.Name, d.Metadata.Generation
	moved := pin != nil && head != "" && head != pin.RefHead
	probe := d.Status
	probe.Conditions = append([]api.Condition(nil), d.Status.Conditions...)
	if !moved && !setPinnedCondition(&probe, name, &d.Spec, gen) {
		return // nothing to write (the common case: one read, no write)
	}
	err := r.setStatus(ctx, name, func(s *api.DeploymentStatus) {
		if moved && s.Pin != nil && s.Pin.Commit == pin.Commit && s.Pin.Generation == pin.Generation {
			s.Pin.RefHead = head
		}
		setPinnedCondition(s, name, &d.Spec, gen)
	})
	if err != nil {
		r.log().Warn("recording a pin's state", "deployment", name, "err", err)
		return
	}
	if moved && pin.RefHead != "" && head != pin.Commit {
		what := "rolled back to revision " + fmt.Sprint(pin.Revision)
		if pin.Reason != api.TriggerRollback {
			what = "redeployed"
		}
		r.Events.Record(ctx, &api.Event{Type: api.EventPushIgnored, Severity: api.SeverityWarning, Object: api.KindDeployment + "/" + name,
			Message: fmt.Sprintf("%s moved to commit %s, which is not rolled out: the deployment is pinned at commit %s (%s); `bakery rollout resume deployment/%s` (or `bakery deploy %s`) rolls it out",
				followed(&d.Spec), api.ShortCommit(head), api.ShortCommit(pin.Commit), what, name, name)})
	}
}

// decide works out, from the resolved commit and the status, which
// revision to bring the nodes to, the trigger and who asked for it. A
// changed commit or spec (a changed secret counts) is a new revision.
func (rv *revision) decide(d *api.Deployment) {
	rv.specHash, rv.buildHash = specHash(&d.Spec), buildHash(&d.Spec)
	if rv.env.hash != "" {
		rv.specHash = nf.Hash(rv.specHash, rv.env.hash) // a changed secret is a new revision
	}
	rv.revision = d.Status.Revision
	trigger := api.TriggerDriftRepair
	if rv.commit != d.Status.Commit || rv.specHash != d.Status.SpecHash || rv.revision == 0 {
		rv.revision++
		trigger = api.TriggerApply
		if rv.pin != nil {
			trigger = rv.pin.Reason
		}
	}
	if rv.restart {
		trigger = api.TriggerRestart
	}
	if fa := d.Status.FailedAttempt; fa != nil && fa.Commit == rv.commit && fa.SpecHash == rv.specHash {
		// The same revision failed before: wait for a new commit, a spec
		// change or a manual action rather than failing again.
		if rv.restart || !lastGoodRepairable(&d.Status) {
			rv.wait = true
			return
		}
		// Meanwhile the last good revision (a new commit of the same spec
		// failed) keeps being observed and its drift repaired, under its
		// own revision: see lastGoodRepairable.
		rv.repairOf = fa
		rv.commit, rv.revision, trigger = d.Status.Commit, d.Status.Revision, api.TriggerDriftRepair
	}
	rv.trigger, rv.by = triggeredBy(d, d.Metadata.Generation, trigger, rv.pin)
	rv.cause(d)
	if dr := d.Status.DeployRequest; dr != nil {
		rv.deployRequest = dr.ID
		rv.rerunRelease = dr.RerunRelease && d.Spec.Release != nil
		if rv.rerunRelease && rv.trigger == api.TriggerDriftRepair && rv.repairOf == nil && !rv.restart {
			// deploy --rerun-release of the revision that runs: it rolls
			// out again to a new slot on every node (as a restart does,
			// without downtime), its release command first.
			rv.trigger, rv.by, rv.rerunSlot = api.TriggerDeployNow, dr.By, true
			if rv.by == "" {
				rv.by = controllerName
			}
		}
	}
}
