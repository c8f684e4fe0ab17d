package deployment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/nodeconn"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/rolloutlog"
	"bakery.dev/bakery/reconciler/source"
)

// Deployment condition reasons.
const (
	ReasonConverged         = "Converged"
	ReasonRollingOut        = "RollingOut"
	ReasonRolloutFailed     = "RolloutFailed"
	ReasonSourceUnavailable = "SourceUnavailable"
	ReasonNodesUnavailable  = "NodesUnavailable"
	ReasonSuperseded        = "Superseded"
	ReasonDeadlineExceeded  = "ProgressDeadlineExceeded"
	ReasonSuspended         = "Suspended"
	ReasonInvalidSpec       = "InvalidSpec"
)

// Store is what the deployment reconciler needs of a store.
type Store interface {
	store.Store
	store.Rollouts
}

// Reconciler rolls Deployments out to their nodes: observe each
// node in one round trip, Plan, act, record status. A converged deployment
// costs one SSH round trip per node and writes nothing.
type Reconciler struct {
	// memPorts books ports when Ports is nil.
	memPorts memPortBook

	Store     Store
	Connector nodeconn.Connector
	Mirrors   *source.Mirrors
	// PortMin and PortMax bound the ports allocated to slots (default 20000-29999).
	PortMin, PortMax int
	// Resync is how often a converged deployment is observed again.
	Resync time.Duration
	// StepTimeout bounds one step on a node (default 15m; the progress
	// deadline bounds the whole rollout).
	StepTimeout time.Duration
	// KeepRollouts is how many rollouts (records and logs) are kept per
	// deployment: after a rollout finishes, older ones beyond it are
	// deleted. Zero means DefaultKeepRollouts; negative keeps every one.
	KeepRollouts int
	Logger       *slog.Logger
	// Ports books the ports that rollouts in flight have chosen but not
	// yet recorded in the node's state files, so that two deployments
	// rolling out on one node at once never pick the same port. Several
	// control planes sharing a store must share it (pgstore.Coordinator);
	// nil keeps the bookings in this process.
	Ports store.PortBook
	// ServerID names this control plane in the rollouts it runs.
	ServerID string
	// Keyring opens the Secrets deployments reference (nil: a deployment
	// that uses secrets does not roll out).
	Keyring *sealed.Keyring
	// Runtime and Ingress default to systemd units and nginx.
	Runtime Runtime
	Ingress Ingress
	// ACMEServer is the ACME directory certificates come from when a spec
	// names none (default DefaultACMEServer).
	ACMEServer string
	// RenewBefore is how long before expiry a certificate is renewed
	// (default DefaultRenewBefore); CertRetry how long a failed
	// certificate step waits before it is tried again (default
	// DefaultCertRetry).
	RenewBefore, CertRetry time.Duration

	// events records RolloutSucceeded, RolloutFailed and UnitUnhealthy
	// (nil: none).
	Events *events.Recorder
}

func (r *Reconciler) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// specHash identifies what a running slot depends on besides the commit.
func specHash(s *api.DeploymentSpec) string {
	var env []string
	for _, e := range s.Run.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	sort.Strings(env)
	port := ""
	if s.Run.Port != nil {
		port = fmt.Sprint(*s.Run.Port)
	}
	hosts := ""
	if s.Ingress != nil {
		hosts = strings.Join(s.Ingress.Hosts, ",")
	}
	h := nf.Hash(s.Runtime, s.Run.Command, port, strings.Join(env, "\x00"), hosts, buildHash(s))
	if isDocker(s) && s.Docker != nil {
		h = nf.Hash(h, s.Docker.Network)
	}
	return h
}

func buildHash(s *api.DeploymentSpec) string {
	if isDocker(s) {
		// The image is built from the Dockerfile with the build args:
		// a change of either makes a new release (and image).
		var args []string
		if s.Docker != nil {
			for k, v := range s.Docker.BuildArgs {
				args = append(args, k+"="+v)
			}
		}
		sort.Strings(args)
		file := ""
		if s.Docker != nil {
			file = s.Docker.Dockerfile
		}
		return nf.Hash("docker", file, strings.Join(args, "\x00"))
	}
	return nf.Hash(s.Build.Install, s.Build.Test, s.Build.Build)
}

// target is one node the deployment runs on (or is being removed from).
type target struct {
	node   *api.Node
	via    *api.Node
	remove bool
}

// selectNodes returns the nodes the deployment should run on, sorted by
// name, and the names it names that do not exist.
func (r *Reconciler) selectNodes(ctx context.Context, d *api.Deployment) ([]target, []string, error) {
	all, err := r.Store.List(ctx, api.KindNode, store.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	byName := map[string]*api.Node{}
	for _, o := range all {
		n := o.(*api.Node)
		byName[n.Metadata.Name] = n
	}
	want := map[string]bool{}
	var missing []string
	for _, name := range d.Spec.Nodes {
		if _, ok := byName[name]; ok {
			want[name] = true
		} else {
			missing = append(missing, name)
		}
	}
	if len(d.Spec.NodeSelector) > 0 {
		sel := api.SelectorFromMap(d.Spec.NodeSelector)
		for name, n := range byName {
			if sel.Matches(n.Metadata.Labels) {
				want[name] = true
			}
		}
	}
	var out []target
	for name := range want {
		n := byName[name]
		out = append(out, target{node: n, via: byName[n.Spec.Via]})
	}
	// Nodes the app ran on that are no longer selected: remove it there.
	for _, ns := range d.Status.Nodes {
		if n, ok := byName[ns.Node]; ok && !want[ns.Node] {
			out = append(out, target{node: n, via: byName[n.Spec.Via], remove: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].node.Metadata.Name < out[j].node.Metadata.Name })
	return out, missing, nil
}

// Reconcile implements Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconciler.Request) (reconciler.Result, error) {
	obj, err := r.Store.Get(ctx, api.KindDeployment, req.Name)
	if errors.Is(err, store.ErrNotFound) {
		return reconciler.Result{}, nil
	}
	if err != nil {
		return reconciler.Result{}, err
	}
	d := obj.(*api.Deployment)
	gen := d.Metadata.Generation
	d.Default()
	if d.Metadata.Annotations[api.AnnotationDeletionRequested] != "" {
		return r.finalize(ctx, d)
	}
	if d.Spec.Suspend {
		return reconciler.Result{}, r.setStatus(ctx, d.Metadata.Name, func(s *api.DeploymentStatus) {
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: ReasonSuspended, ObservedGeneration: gen})
		})
	}
	if errs := d.Validate(); len(errs) > 0 {
		msg := errs.Error()
		err := r.setStatus(ctx, d.Metadata.Name, func(s *api.DeploymentStatus) {
			s.ObservedGeneration = gen
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionTrue, Reason: ReasonInvalidSpec, Message: msg, ObservedGeneration: gen})
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: ReasonInvalidSpec, Message: msg, ObservedGeneration: gen})
		})
		return reconciler.Result{}, reconciler.Terminal(errors.Join(fmt.Errorf("invalid spec: %s", msg), err))
	}
	renv, err := resolveEnv(ctx, r.Store, r.Keyring, &d.Spec)
	if err != nil {
		msg := err.Error()
		serr := r.setStatus(ctx, d.Metadata.Name, func(s *api.DeploymentStatus) {
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: ReasonSecretUnavailable, Message: msg, ObservedGeneration: gen})
		})
		return reconciler.Result{}, errors.Join(fmt.Errorf("secrets: %w", err), serr)
	}

	pinned := d.Spec.Source.Commit
	pin := d.Status.Pin
	if pin != nil && pin.Generation != gen {
		pin = nil // the spec changed since the action: the spec wins
	}
	if pin != nil {
		pinned = pin.Commit
	}
	restart := d.Status.Restart != "" && d.Status.Restart != d.Status.RestartDone
	commit, err := r.Mirrors.Resolve(ctx, d.Spec.Source.Repo, d.Spec.Source.Ref, pinned)
	if err != nil {
		msg := err.Error()
		serr := r.setStatus(ctx, d.Metadata.Name, func(s *api.DeploymentStatus) {
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: ReasonSourceUnavailable, Message: msg, ObservedGeneration: gen})
		})
		return reconciler.Result{}, errors.Join(fmt.Errorf("resolve source: %w", err), serr)
	}
	targets, missing, err := r.selectNodes(ctx, d)
	if err != nil {
		return reconciler.Result{}, err
	}

	sh, bh := specHash(&d.Spec), buildHash(&d.Spec)
	if renv.hash != "" {
		sh = nf.Hash(sh, renv.hash) // a changed secret is a new revision
	}
	revision := d.Status.Revision
	trigger := api.TriggerDriftRepair
	if commit != d.Status.Commit || sh != d.Status.SpecHash || revision == 0 {
		revision++
		trigger = api.TriggerApply
		if pin != nil {
			trigger = pin.Reason
		}
	}
	if restart {
		trigger = api.TriggerRestart
	}
	var repairOf *api.FailedAttempt
	if fa := d.Status.FailedAttempt; fa != nil && fa.Commit == commit && fa.SpecHash == sh {
		// The same revision failed before: wait for a new commit, a spec
		// change or a manual action rather than failing again.
		if restart || !lastGoodRepairable(&d.Status) {
			return reconciler.Result{RequeueAfter: r.resync()}, nil
		}
		// Meanwhile the last good revision (a new commit of the same spec
		// failed) keeps being observed and its drift repaired, under its
		// own revision: see lastGoodRepairable.
		repairOf = fa
		commit, revision, trigger = d.Status.Commit, d.Status.Revision, api.TriggerDriftRepair
	}

	trigger, by := triggeredBy(d, gen, trigger, pin)
	deployReq := ""
	if dr := d.Status.DeployRequest; dr != nil {
		deployReq = dr.ID
	}

	// Observe and plan every node.
	runs := make([]*nodeRun, len(targets))
	plans := make([][]Action, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := &nodeRun{node: t.node.Metadata.Name, app: d.Metadata.Name, spec: &d.Spec, env: maps.Clone(renv.env),
				ex: r.Connector.Executor(t.node, t.via), mirrors: r.Mirrors, timeout: r.stepTimeout(), acme: r.acmeServer(&d.Spec)}
			n.desired = Desired{App: d.Metadata.Name, Commit: commit, Revision: revision, SpecHash: sh, BuildHash: bh,
				PortMin: r.portMin(), PortMax: r.portMax(), PortStart: r.portStart(d.Metadata.Name), KeepReleases: d.Spec.KeepReleases, Remove: t.remove, NewSlot: restart,
				TLSHosts: tlsHosts(&d.Spec), RenewBefore: r.renewBefore(), Now: time.Now(), RepairOnly: repairOf != nil}
			if d.Spec.Run.Port != nil {
				n.desired.PinnedPort = *d.Spec.Run.Port
			}
			n.desired.SiteHash = func(slot string, port int) string { return r.ingress().Hash(n, slot, port) }
			var certHosts []string
			if !t.remove {
				certHosts = tlsHosts(&d.Spec)
			}
			obs, err := ObserveAppRuntime(ctx, n.ex, n.app, d.Spec.Runtime, 30*time.Second, certHosts...)
			if err != nil {
				errs[i] = fmt.Errorf("observe %s: %w", n.node, err)
				return
			}
			n.obs = obs
			n.prev = previousRuntime(&d.Spec, obs)
			runs[i] = n
			plans[i], errs[i] = r.planWithReservations(ctx, n, obs.Observed)
		}()
	}
	wg.Wait()

	converged := true
	for i := range targets {
		if errs[i] == nil && len(plans[i]) > 0 {
			converged = false
		}
	}
	obsErr := errors.Join(errs...)
	if converged && repairOf != nil {
		// Nothing to repair: refresh what the nodes run; the failure
		// stays as it is.
		err := r.setStatus(ctx, d.Metadata.Name, func(s *api.DeploymentStatus) {
			r.nodeSummary(s, targets, runs)
		})
		if obsErr != nil {
			return reconciler.Result{}, errors.Join(obsErr, err)
		}
		return reconciler.Result{RequeueAfter: r.resync()}, err
	}
	if converged {
		// A rollout still marked running was interrupted after its last
		// step (its control plane stopped): the nodes say it is done.
		interrupted := r.closeInterrupted(ctx, d, api.RolloutSucceeded, "its control plane stopped before recording the end; the nodes were found converged")
		err := r.setStatus(ctx, d.Metadata.Name, func(s *api.DeploymentStatus) {
			r.summarize(s, targets, runs, gen, commit, revision, sh, missing, obsErr)
			clearDeployRequest(s, deployReq) // nothing was left to deploy
			if interrupted != "" && s.CurrentRollout != nil && s.CurrentRollout.ID == interrupted {
				s.CurrentRollout.State = api.RolloutSucceeded
			}
		})
		if obsErr != nil {
			return reconciler.Result{}, errors.Join(obsErr, err)
		}
		return reconciler.Result{RequeueAfter: r.resync()}, err
	}
	return r.rollout(ctx, d, rolloutPlan{targets: targets, runs: runs, plans: plans, errs: errs, commit: commit,
		revision: revision, specHash: sh, trigger: trigger, by: by, deployRequest: deployReq, missing: missing, restart: d.Status.Restart, repairOf: repairOf, secrets: renv.secret})
}

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

type rolloutPlan struct {
	targets  []target
	runs     []*nodeRun
	plans    [][]Action
	errs     []error
	commit   string
	revision int64
	specHash string
	trigger  string
	// by is who asked for the rollout (Rollout.TriggeredBy).
	by string
	// deployRequest is the id of the deploy request the rollout carries
	// out ("": none), cleared when it starts.
	deployRequest string
	missing       []string
	restart       string // the restart request carried out, if any
	// repairOf, when set, is the failed attempt that stands while this
	// rollout repairs drift of the last good revision: it neither clears
	// the failure nor marks the deployment Ready.
	repairOf *api.FailedAttempt
	secrets  []string // values from secrets, masked in the log
}

// clearDeployRequest clears the deploy request id once it is carried out
// (a newer one stays).
func clearDeployRequest(s *api.DeploymentStatus, id string) {
	if id != "" && s.DeployRequest != nil && s.DeployRequest.ID == id {
		s.DeployRequest = nil
	}
}

func newRolloutID(app string, revision int64) string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", app, revision, hex.EncodeToString(b))
}

// rollout executes the plans, node batch by node batch, recording the
// rollout and its log.
func (r *Reconciler) rollout(ctx context.Context, d *api.Deployment, p rolloutPlan) (reconciler.Result, error) {
	name, gen := d.Metadata.Name, d.Metadata.Generation
	var prevProgressing *api.Condition
	if c := api.FindCondition(d.Status.Conditions, api.ConditionProgressing); c != nil {
		cp := *c
		prevProgressing = &cp
	}
	ro := &api.Rollout{ID: newRolloutID(name, p.revision), Deployment: name, Revision: p.revision, Trigger: p.trigger,
		Commit: p.commit, Generation: gen, TriggeredBy: p.by, Server: r.ServerID, State: api.RolloutRunning, CreatedAt: api.Now()}
	for i, t := range p.targets {
		if len(p.plans[i]) > 0 {
			ro.Nodes = append(ro.Nodes, api.RolloutNode{Node: t.node.Metadata.Name, State: api.RolloutPending})
		}
	}
	if err := r.Store.CreateRollout(ctx, ro); err != nil {
		return reconciler.Result{}, fmt.Errorf("create rollout: %w", err)
	}
	// A rollout still marked running was interrupted (one reconcile per
	// key runs at a time: nothing else can be running it): the control
	// plane stopped or lost its lock. This rollout continues from what
	// the nodes say.
	r.closeInterrupted(ctx, d, api.RolloutCancelled, "interrupted before it finished (its control plane stopped or lost its lock); continued by "+ro.ID)
	logs := rolloutlog.NewSink(r.Store, ro.ID, r.log(), append(envValues(&d.Spec), p.secrets...)...)
	defer logs.Close()
	rec := &rolloutlog.Recorder{Store: r.Store, Rollout: ro}
	// After every step the deployment's status tells how far the log got,
	// so a client can start following from there.
	rec.AfterStep = func() {
		seq := logs.LastSeq()
		if err := r.setStatus(ctx, name, func(s *api.DeploymentStatus) {
			if s.CurrentRollout != nil && s.CurrentRollout.ID == ro.ID && s.CurrentRollout.LastLogSeq < seq {
				s.CurrentRollout.LastLogSeq = seq
			}
		}); err != nil {
			r.log().Debug("recording the log position", "deployment", name, "err", err)
		}
	}

	progressing := fmt.Sprintf("rolling out revision %d (commit %s)", p.revision, short(p.commit))
	if p.repairOf != nil {
		progressing = repairMessage(p) + " (the failed attempt is not retried)"
	}
	if err := r.setStatus(ctx, name, func(s *api.DeploymentStatus) {
		s.CurrentRollout = &api.RolloutRef{ID: ro.ID, State: ro.State}
		clearDeployRequest(s, p.deployRequest)
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionTrue, Reason: ReasonRollingOut,
			Message: progressing, ObservedGeneration: gen})
	}); err != nil {
		return reconciler.Result{}, err
	}

	dctx, cancel := context.WithTimeout(ctx, d.Spec.ProgressDeadline.Duration)
	defer cancel()
	var failure error
	var failedNode string
	batch := d.Spec.Strategy.MaxUnavailable
	var pending []int
	for i := range p.targets {
		if len(p.plans[i]) > 0 && p.errs[i] == nil {
			pending = append(pending, i)
		}
	}
	r.unitUnhealthyEvents(ctx, name, ro.ID, p, pending)
	for start := 0; start < len(pending) && failure == nil; start += batch {
		end := min(start+batch, len(pending))
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, i := range pending[start:end] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := p.runs[i]
				n.log = func(stream, text string) { logs.Add(n.node, stream, text) }
				if err := r.runNode(dctx, n, p.plans[i], rec); err != nil {
					mu.Lock()
					if failure == nil {
						failure, failedNode = err, n.node
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	logs.Close()

	state, reason, msg := api.RolloutSucceeded, ReasonConverged, ""
	var certErr *certError
	switch {
	case failure == nil:
	case errors.As(failure, &certErr) && ctx.Err() == nil && dctx.Err() == nil:
		state, reason, msg = api.RolloutFailed, ReasonCertificateFailed, fmt.Sprintf("node %s: %v", failedNode, failure)
		if certErr.renew {
			reason = ReasonCertificateRenewalFailed
		}
	case ctx.Err() != nil:
		state, reason, msg = api.RolloutSuperseded, ReasonSuperseded, "superseded by a newer spec or cancelled"
		if errors.Is(context.Cause(ctx), store.ErrLockLost) {
			msg = "stopped: this control plane lost its lock on the deployment (its database connection broke); the next reconcile continues from what the nodes say"
		}
	case errors.Is(dctx.Err(), context.DeadlineExceeded):
		state, reason, msg = api.RolloutFailed, ReasonDeadlineExceeded, fmt.Sprintf("not finished within the progress deadline (%s)", d.Spec.ProgressDeadline.Duration)
	default:
		state, reason, msg = api.RolloutFailed, ReasonRolloutFailed, fmt.Sprintf("node %s: %v", failedNode, failure)
	}
	if p.repairOf != nil {
		msg = strings.TrimSuffix(repairMessage(p)+": "+msg, ": ")
	}
	rec.Finish(state, msg)
	if state == api.RolloutSucceeded {
		var done []string
		for _, i := range pending {
			if !p.targets[i].remove {
				done = append(done, p.targets[i].node.Metadata.Name)
			}
		}
		r.recordLastDeployment(context.WithoutCancel(ctx), name, p.commit, p.revision, done)
	}
	// Status is written with a fresh context: a superseded rollout still
	// records how it ended.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	obsErr := errors.Join(p.errs...)
	serr := r.setStatus(sctx, name, func(s *api.DeploymentStatus) {
		s.CurrentRollout = &api.RolloutRef{ID: ro.ID, State: state, LastLogSeq: logs.LastSeq()}
		switch {
		case p.repairOf != nil:
			// A drift repair while a failed attempt stands: the failure
			// (FailedAttempt, Degraded, Ready) stays until a new commit,
			// spec or action; Progressing says again why nothing rolls out.
			r.nodeSummary(s, p.targets, p.runs)
			if prevProgressing != nil {
				c := *prevProgressing
				c.LastTransitionTime = nil
				api.SetCondition(&s.Conditions, c)
			}
			return
		case certErr != nil && state == api.RolloutFailed:
			// The revision itself is out; only a certificate is missing
			// or due. No FailedAttempt: the step is retried after
			// CertRetry.
			s.FailedAttempt = nil
			if p.trigger == api.TriggerRestart {
				s.RestartDone = p.restart
			}
			r.summarize(s, p.targets, p.runs, gen, p.commit, p.revision, p.specHash, p.missing, obsErr)
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: gen})
			if !certErr.renew {
				api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: reason,
					Message: "served over HTTP only: " + msg, ObservedGeneration: gen})
			}
			return
		}
		switch state {
		case api.RolloutSucceeded:
			s.FailedAttempt = nil
			if p.trigger == api.TriggerRestart {
				s.RestartDone = p.restart
			}
			r.summarize(s, p.targets, p.runs, gen, p.commit, p.revision, p.specHash, p.missing, obsErr)
		case api.RolloutFailed:
			s.FailedAttempt = &api.FailedAttempt{Commit: p.commit, SpecHash: p.specHash, Reason: msg}
			s.ObservedGeneration = gen
			r.nodeSummary(s, p.targets, p.runs)
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: gen})
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: gen})
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: reason, Message: "the previous revision keeps serving: " + msg, ObservedGeneration: gen})
		default:
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: gen})
		}
	})
	if !repeatedCertFailure(d.Status.Conditions, certErr, reason) {
		r.rolloutFinishedEvent(sctx, name, ro, state, msg)
		if certErr != nil && certErr.renew && state == api.RolloutFailed {
			r.certificateRenewalFailedEvent(sctx, name, failedNode, ro.ID, certErr)
		}
	}
	// Retention after the status is written: deleting old logs never
	// delays it.
	r.pruneRollouts(ctx, name, ro.ID)
	switch {
	case p.repairOf != nil && state == api.RolloutFailed:
		// Retried with backoff (the failed attempt stands either way).
		return reconciler.Result{}, errors.Join(fmt.Errorf("%s: node %s: %w", repairMessage(p), failedNode, failure), serr)
	case certErr != nil && state == api.RolloutFailed:
		return reconciler.Result{RequeueAfter: r.certRetry()}, serr
	}
	switch state {
	case api.RolloutSucceeded:
		return reconciler.Result{RequeueAfter: r.resync()}, errors.Join(obsErr, serr)
	case api.RolloutFailed:
		// Not retried on its own (FailedAttempt); resync still looks for
		// a new commit.
		return reconciler.Result{RequeueAfter: r.resync()}, serr
	}
	return reconciler.Result{}, errors.Join(failure, serr)
}

// closeInterrupted ends the deployment's current rollout if its record is
// still running: only a reconcile of this key could run it, and this one
// holds the key, so its control plane stopped. It returns the rollout's
// id ("" when there was none).
func (r *Reconciler) closeInterrupted(ctx context.Context, d *api.Deployment, state, msg string) string {
	cur := d.Status.CurrentRollout
	if cur == nil || cur.State != api.RolloutRunning {
		return ""
	}
	old, err := r.Store.GetRollout(ctx, cur.ID)
	if err != nil || old.Done() {
		return ""
	}
	old.State, old.Message, old.FinishedAt = state, msg, api.Now()
	if err := r.Store.UpdateRollout(ctx, old); err != nil {
		r.log().Warn("marking an interrupted rollout", "rollout", old.ID, "err", err)
		return ""
	}
	r.log().Info("interrupted rollout closed", "rollout", old.ID, "ranOn", old.Server, "state", state)
	return old.ID
}

// repairMessage says which revision a repair rollout (p.repairOf set)
// repairs and which failed attempt stands.
func repairMessage(p rolloutPlan) string {
	return fmt.Sprintf("drift repair of revision %d (commit %s) while the failed attempt at commit %s stands",
		p.revision, short(p.commit), short(p.repairOf.Commit))
}

// unitUnhealthyEvents raises UnitUnhealthy once per node whose plan
// repairs drift by starting an active unit found not running.
func (r *Reconciler) unitUnhealthyEvents(ctx context.Context, name, rolloutID string, p rolloutPlan, pending []int) {
	for _, i := range pending {
		for _, a := range p.plans[i] {
			if a.Type == ActStart && strings.HasPrefix(a.Reason, "active unit is ") {
				r.Events.Record(ctx, &api.Event{Type: api.EventUnitUnhealthy, Severity: api.SeverityWarning, Object: api.KindDeployment + "/" + name,
					Rollout: rolloutID, Message: fmt.Sprintf("node %s: %s (%s slot); restarting it", p.targets[i].node.Metadata.Name, a.Reason, a.Slot)})
				break
			}
		}
	}
}

// rolloutFinishedEvent raises RolloutSucceeded or RolloutFailed (nothing
// for a superseded rollout).
func (r *Reconciler) rolloutFinishedEvent(ctx context.Context, name string, ro *api.Rollout, state, msg string) {
	e := &api.Event{Object: api.KindDeployment + "/" + name, Rollout: ro.ID}
	switch state {
	case api.RolloutSucceeded:
		e.Type, e.Severity = api.EventRolloutSucceeded, api.SeverityInfo
		e.Message = fmt.Sprintf("revision %d (commit %s, %s) rolled out", ro.Revision, short(ro.Commit), ro.Trigger)
	case api.RolloutFailed:
		e.Type, e.Severity, e.Message = api.EventRolloutFailed, api.SeverityError, msg
	default:
		return
	}
	r.Events.Record(ctx, e)
}

// runNode executes a node's plan in order. A failed step after the new
// slot was started stops that slot again, so the old one keeps serving
// alone.
func (r *Reconciler) runNode(ctx context.Context, n *nodeRun, plan []Action, rec *rolloutlog.Recorder) error {
	rec.NodeState(n.node, api.RolloutRunning)
	rt, ing := r.runtimeFor(n.spec), r.ingress()
	for _, a := range plan {
		n.logf("step %s", a)
		idx := rec.StepStart(n.node, a.String())
		err := n.act(ctx, rt, ing, a)
		rec.StepEnd(n.node, idx, err)
		if err != nil {
			n.log(api.StreamBakery, fmt.Sprintf("step %s failed: %v", a.Type, err))
			if (a.Type == ActStart || a.Type == ActHealth) && (n.obs.State == nil || n.obs.State.Active != a.Slot) {
				// Take the unhealthy new slot down; the active slot was never
				// touched. (A drift repair of the active slot that failed or
				// was superseded leaves it as it is: stopping it could only
				// take down what still serves.)
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				if serr := rt.Stop(cctx, n, a.Slot); serr != nil {
					n.logf("stopping the failed %s slot: %v", a.Slot, serr)
				}
				cancel()
			}
			rec.NodeState(n.node, api.RolloutFailed)
			return fmt.Errorf("%s: %w", a.Type, err)
		}
	}
	rec.NodeState(n.node, api.RolloutSucceeded)
	return nil
}

// summarize fills status after a converged observation or a successful rollout.
func (r *Reconciler) summarize(s *api.DeploymentStatus, targets []target, runs []*nodeRun, gen int64, commit string, revision int64, sh string, missing []string, obsErr error) {
	s.ObservedGeneration = gen
	s.Commit = commit
	s.Revision = revision
	s.SpecHash = sh
	r.nodeSummary(s, targets, runs)
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: ReasonConverged, ObservedGeneration: gen})
	api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionFalse, Reason: ReasonConverged, ObservedGeneration: gen})
	switch {
	case obsErr != nil || len(missing) > 0:
		msg := ""
		if len(missing) > 0 {
			msg = "nodes not found: " + strings.Join(missing, ", ")
		}
		if obsErr != nil {
			msg = strings.TrimPrefix(msg+"; "+obsErr.Error(), "; ")
		}
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: ReasonNodesUnavailable, Message: msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: ReasonNodesUnavailable, Message: msg, ObservedGeneration: gen})
	default:
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: ReasonConverged, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionFalse, Reason: ReasonConverged, ObservedGeneration: gen})
	}
}

func (r *Reconciler) nodeSummary(s *api.DeploymentStatus, targets []target, runs []*nodeRun) {
	s.Nodes = nil
	for i, t := range targets {
		if t.remove {
			continue
		}
		ns := api.NodeAppStatus{Node: t.node.Metadata.Name}
		if n := runs[i]; n != nil && n.obs.State != nil && n.obs.State.Active != "" {
			a := n.obs.State.Active
			slot := n.obs.State.Slots[a]
			ns.ActiveSlot, ns.Commit, ns.Port = a, slot.Commit, slot.Port
			ns.UnitState = n.obs.Units[a]
			ns.Healthy = running(ns.UnitState) || slot.Commit == n.desired.Commit
			ns.Certificates = certStatus(n.spec, n.obs.Certs)
		} else if runs[i] == nil {
			ns.Message = "unreachable"
		}
		s.Nodes = append(s.Nodes, ns)
	}
}

// setStatus re-reads the deployment, applies mutate to its status and
// writes it (nothing is written when the status did not change). A
// conflict is retried a few times.
func (r *Reconciler) setStatus(ctx context.Context, name string, mutate func(*api.DeploymentStatus)) error {
	for attempt := 0; ; attempt++ {
		obj, err := r.Store.Get(ctx, api.KindDeployment, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		d := obj.(*api.Deployment)
		mutate(&d.Status)
		_, err = r.Store.UpdateStatus(ctx, d)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		return err
	}
}

func (r *Reconciler) resync() time.Duration {
	if r.Resync > 0 {
		return r.Resync
	}
	return 30 * time.Second
}

func (r *Reconciler) stepTimeout() time.Duration {
	if r.StepTimeout > 0 {
		return r.StepTimeout
	}
	return 15 * time.Minute
}

func (r *Reconciler) portMin() int {
	if r.PortMin > 0 {
		return r.PortMin
	}
	return 20000
}

func (r *Reconciler) portMax() int {
	if r.PortMax > 0 {
		return r.PortMax
	}
	return 29999
}

// runtimeFor returns the Runtime of a spec: r.Runtime when set (tests),
// else docker containers or systemd units per spec.runtime.
func (r *Reconciler) runtimeFor(s *api.DeploymentSpec) Runtime {
	if r.Runtime != nil {
		return r.Runtime
	}
	if isDocker(s) {
		return dockerRuntime{}
	}
	return systemdRuntime{}
}

// previousRuntime returns the runtime the app's node state says it ran
// under, when that differs from the spec's (nil otherwise).
func previousRuntime(s *api.DeploymentSpec, obs AppObservation) Runtime {
	if obs.State == nil || obs.State.Active == "" || obs.State.Dockerized == isDocker(s) {
		return nil
	}
	if obs.State.Dockerized {
		return dockerRuntime{}
	}
	return systemdRuntime{}
}

func (r *Reconciler) ingress() Ingress {
	if r.Ingress != nil {
		return r.Ingress
	}
	return nginxIngress{}
}

// envValues lists the app's environment values, masked in stored logs.
func envValues(s *api.DeploymentSpec) []string {
	var out []string
	for _, e := range s.Run.Env {
		out = append(out, e.Value)
	}
	return out
}

// finalize removes the app from every node it may run on — the nodes in
// status and the nodes its spec selects — and then deletes the
// Deployment. A node that cannot be reached keeps the object (and the
// deletion request) until it can, or until the Node itself is deleted.
func (r *Reconciler) finalize(ctx context.Context, d *api.Deployment) (reconciler.Result, error) {
	name := d.Metadata.Name
	targets, _, err := r.selectNodes(ctx, d)
	if err != nil {
		return reconciler.Result{}, err
	}
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := &nodeRun{node: t.node.Metadata.Name, app: name, spec: &d.Spec, ex: r.Connector.Executor(t.node, t.via),
				mirrors: r.Mirrors, timeout: r.stepTimeout(),
				log: func(stream, text string) {
					r.log().Info("removing app", "deployment", name, "node", t.node.Metadata.Name, "stream", stream, "text", text)
				}}
			obs, err := ObserveAppRuntime(ctx, n.ex, name, d.Spec.Runtime, 30*time.Second)
			if err == nil {
				n.obs = obs
				n.prev = previousRuntime(&d.Spec, obs)
				var plan []Action
				plan, err = Plan(Desired{App: name, Remove: true}, obs.Observed)
				for _, a := range plan {
					if err = n.act(ctx, r.runtimeFor(&d.Spec), r.ingress(), a); err != nil {
						break
					}
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("node %s: %w", n.node, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		msg := "deleting: " + err.Error()
		serr := r.setStatus(ctx, name, func(s *api.DeploymentStatus) {
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionTrue, Reason: "Deleting", Message: msg, ObservedGeneration: d.Metadata.Generation})
		})
		return reconciler.Result{}, errors.Join(err, serr)
	}
	if err := r.Store.Delete(ctx, api.KindDeployment, name, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
		return reconciler.Result{}, err
	}
	if err := r.portBook().ForgetPorts(ctx, name); err != nil {
		r.log().Warn("forgetting the deleted deployment's port bookings", "deployment", name, "err", err)
	}
	r.log().Info("deployment removed from its nodes and deleted", "deployment", name, "nodes", len(targets))
	return reconciler.Result{}, nil
}

// recordLastDeployment writes, on every node the rollout succeeded on,
// which deployment last succeeded there.
func (r *Reconciler) recordLastDeployment(ctx context.Context, name, commit string, revision int64, nodes []string) {
	for _, node := range nodes {
		for attempt := 0; attempt < 5; attempt++ {
			o, err := r.Store.Get(ctx, api.KindNode, node)
			if err != nil {
				break
			}
			n := o.(*api.Node)
			n.Status.LastDeployment = &api.LastDeployment{Deployment: name, Commit: commit, Revision: revision, Time: api.Now()}
			if _, err := r.Store.UpdateStatus(ctx, n); !errors.Is(err, store.ErrConflict) {
				break
			}
		}
	}
}

// planWithReservations plans one node, treating ports that other apps'
// rollouts in flight have booked as used, and books the ports its own
// plan uses until the next plan of this app on this node.
func (r *Reconciler) planWithReservations(ctx context.Context, n *nodeRun, obs Observed) ([]Action, error) {
	var plan []Action
	err := r.portBook().BookPorts(ctx, n.node, n.app, func(taken map[int]bool) ([]int, error) {
		used := make(map[int]bool, len(obs.UsedPorts)+len(taken))
		for p := range obs.UsedPorts {
			used[p] = true
		}
		for p := range taken {
			used[p] = true
		}
		o := obs
		o.UsedPorts = used
		var err error
		plan, err = Plan(n.desired, o)
		if err != nil {
			return nil, err
		}
		var mine []int
		for _, a := range plan {
			if a.Port != 0 && !slices.Contains(mine, a.Port) {
				mine = append(mine, a.Port)
			}
		}
		return mine, nil
	})
	return plan, err
}

func (r *Reconciler) portBook() store.PortBook {
	if r.Ports != nil {
		return r.Ports
	}
	return &r.memPorts
}

// memPortBook is the PortBook of a single control plane.
type memPortBook struct {
	mu    sync.Mutex
	ports map[string]map[int]string // node → port → app
}

// BookPorts implements store.PortBook.
func (b *memPortBook) BookPorts(_ context.Context, node, app string, plan func(map[int]bool) ([]int, error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	taken := map[int]bool{}
	for p, a := range b.ports[node] {
		if a != app {
			taken[p] = true
		}
	}
	mine, err := plan(taken)
	if err != nil {
		return err
	}
	if b.ports == nil {
		b.ports = map[string]map[int]string{}
	}
	res := b.ports[node]
	if res == nil {
		res = map[int]string{}
		b.ports[node] = res
	}
	for p, a := range res {
		if a == app {
			delete(res, p)
		}
	}
	for _, p := range mine {
		res[p] = app
	}
	return nil
}

// ForgetPorts implements store.PortBook.
func (b *memPortBook) ForgetPorts(_ context.Context, app string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, res := range b.ports {
		for p, a := range res {
			if a == app {
				delete(res, p)
			}
		}
	}
	return nil
}

// portStart is where an app's search for free ports begins: a hash of its
// name, even, so that its two slots tend to sit side by side.
func (r *Reconciler) portStart(app string) int {
	h := fnv.New32a()
	h.Write([]byte(app))
	span := r.portMax() - r.portMin() + 1
	return r.portMin() + int(h.Sum32()%uint32(span))&^1
}

// DefaultKeepRollouts is how many rollouts per deployment are kept when
// Reconciler.KeepRollouts is zero.
const DefaultKeepRollouts = 20

// keepRollouts returns how many rollouts per deployment to keep; 0 means
// all.
func (r *Reconciler) keepRollouts() int {
	switch {
	case r.KeepRollouts == 0:
		return DefaultKeepRollouts
	case r.KeepRollouts < 0:
		return 0
	}
	return r.KeepRollouts
}

// pruneRollouts deletes a deployment's oldest rollouts (in ListRollouts
// order), with their logs, so that the current one, the two newest
// succeeded ones (rollback targets) and the keep-1 newest others are left. The current rollout is never deleted, even when it
// sorts below others (a rollback to an older revision). Failures are
// logged, not returned: retention never fails a rollout, and the next
// rollout tries again.
func (r *Reconciler) pruneRollouts(ctx context.Context, deployment, current string) {
	keep := r.keepRollouts()
	if keep <= 0 {
		return
	}
	// Runs after a rollout that may have been cancelled: it still prunes.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	list, err := r.Store.ListRollouts(ctx, deployment, 0)
	if err != nil {
		r.log().Warn("listing rollouts to prune", "deployment", deployment, "err", err)
		return
	}
	kept := 1 // the current one
	succeeded := 0
	for _, ro := range list {
		if ro.ID == current {
			continue
		}
		// The two newest succeeded rollouts are what a rollback goes back
		// to: kept even when many failed rollouts came after them.
		if ro.State == api.RolloutSucceeded {
			succeeded++
			if succeeded <= 2 {
				continue
			}
		}
		if kept < keep {
			kept++
			continue
		}
		if err := r.Store.DeleteRollout(ctx, ro.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.log().Warn("deleting an old rollout", "deployment", deployment, "rollout", ro.ID, "err", err)
			continue
		}
		r.log().Debug("deleted an old rollout", "deployment", deployment, "rollout", ro.ID, "keep", keep)
	}
}
