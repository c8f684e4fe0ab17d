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
	request             string // the action request carried out ("": none; see cause)
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
	rv.commit, err = r.Mirrors.Resolve(ctx, d.Spec.Source.Repo, d.Spec.Source.Ref, pinned)
	if err != nil {
		o.ending, o.msg = endSourceUnavailable, err.Error()
		return nil, fmt.Errorf("resolve source: %w", err)
	}
	return rv, nil
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
	}
}
