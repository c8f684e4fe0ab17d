package deployment

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/nodescript"
)

// target is one node the deployment runs on (or is being removed from).
type target struct {
	node   *api.Node
	via    *api.Node
	remove bool
	// schedOne: the node runs the schedules with node: one.
	schedOne bool
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
	chooseSchedNode(out)
	return out, missing, nil
}

// observe observes every target node in one round trip each, at once,
// and plans what each must do. A node that cannot be observed (or
// planned) has its error in the plan's errs.
func (r *Reconciler) observe(ctx context.Context, d *api.Deployment, rv *revision, targets []target, missing []string) *rolloutPlan {
	p := &rolloutPlan{targets: targets, runs: make([]*nodeRun, len(targets)), plans: make([][]Action, len(targets)),
		errs: make([]error, len(targets)), commit: rv.commit, revision: rv.revision, specHash: rv.specHash,
		trigger: rv.trigger, by: rv.by, deployRequest: rv.deployRequest, rerunRelease: rv.rerunRelease, request: rv.request, missing: missing, restart: d.Status.Restart,
		repairOf: rv.repairOf, secrets: rv.env.secret}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.runs[i], p.plans[i], p.errs[i] = r.observeNode(ctx, d, rv, t)
		}()
	}
	wg.Wait()
	return p
}

// observeNode observes the app on one node and plans the node's actions
// (plan step: planWithReservations). The node's run is nil when it could
// not be observed.
func (r *Reconciler) observeNode(ctx context.Context, d *api.Deployment, rv *revision, t target) (*nodeRun, []Action, error) {
	n := r.newNodeRun(d, rv, t)
	var certHosts []string
	if !t.remove {
		certHosts = tlsHosts(&d.Spec)
	}
	obs, err := nodescript.ObserveAppOn(ctx, n.ex, nodescript.ObserveAppInput{App: n.app, Runtime: d.Spec.Runtime, CertHosts: certHosts, Persistent: len(d.Spec.Persistent) > 0}, 30*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("observe %s: %w", n.node, err)
	}
	n.obs = obs
	n.prev = previousRuntime(&d.Spec, obs)
	plan, err := r.planWithReservations(ctx, n, obs.Observed)
	return n, plan, err
}

// newNodeRun returns the run of the app on one node, with what the node
// should run (Desired).
func (r *Reconciler) newNodeRun(d *api.Deployment, rv *revision, t target) *nodeRun {
	n := &nodeRun{node: t.node.Metadata.Name, app: d.Metadata.Name, spec: &d.Spec, env: maps.Clone(rv.env.env),
		ex: r.Connector.Executor(t.node, t.via), mirrors: r.Mirrors, timeout: r.stepTimeout(), acme: r.acmeServer(&d.Spec)}
	n.desired = Desired{App: d.Metadata.Name, Commit: rv.commit, Revision: rv.revision, SpecHash: rv.specHash, BuildHash: rv.buildHash,
		PortMin: r.portMin(), PortMax: r.portMax(), PortStart: r.portStart(d.Metadata.Name), KeepReleases: d.Spec.KeepReleases, Remove: t.remove, NewSlot: rv.restart || rv.rerunSlot,
		TLSHosts: tlsHosts(&d.Spec), RenewBefore: r.renewBefore(), Now: time.Now(), RepairOnly: rv.repairOf != nil,
		Schedules: nodeSchedules(&d.Spec, t)}
	if d.Spec.Run.Port != nil {
		n.desired.PinnedPort = *d.Spec.Run.Port
	}
	n.desired.WorkerOnly = !d.Spec.HasWeb()
	for _, p := range d.Spec.Processes {
		n.desired.Procs = append(n.desired.Procs, ProcGoal{Name: p.Name, Replicas: max(p.Replicas, 1)})
	}
	if n.desired.WorkerOnly {
		return n // no site
	}
	n.desired.SiteHash = func(slot string, port int) string { return r.ingress().Hash(n, slot, port) }
	return n
}
