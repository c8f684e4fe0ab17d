package deployment

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/nodescript"
)

// remove handles a deletion request: it removes the app from every node
// it may run on — the nodes in status and the nodes its spec selects —
// and then deletes the Deployment. A node that cannot be reached keeps
// the object (and the deletion request) until it can, or until the Node
// itself is deleted; the status then says why (Progressing, Deleting).
func (r *Reconciler) remove(ctx context.Context, d *api.Deployment, o *outcome) (reconciler.Result, error) {
	name := d.Metadata.Name
	targets, _, err := r.selectNodes(ctx, d)
	if err != nil {
		return reconciler.Result{}, err
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.removeFromNode(ctx, d, t)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		o.ending, o.msg = endDeleting, "deleting: "+err.Error()
		return reconciler.Result{}, err
	}
	// The port bookings go first, while the object (and its deletion
	// request) still exists: a failure is retried with the deletion.
	// Deleting the object ends this reconcile (the controller cancels
	// the reconcile of a deleted object), so nothing may follow it.
	if err := r.forgetPorts(ctx, name); err != nil {
		o.ending, o.msg = endDeleting, "deleting: forgetting its port bookings: "+err.Error()
		return reconciler.Result{}, fmt.Errorf("forgetting the port bookings of deployment %s: %w", name, err)
	}
	if err := r.Store.Delete(ctx, api.KindDeployment, name, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
		return reconciler.Result{}, err
	}
	r.log().Info("deployment removed from its nodes and deleted", "deployment", name, "nodes", len(targets))
	return reconciler.Result{}, nil
}

// forgetPorts drops the deployment's port bookings, with a bounded context
// of its own: a cancelled reconcile (a newer spec, a shutdown) still
// leaves no bookings behind once it got this far.
func (r *Reconciler) forgetPorts(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return r.portBook().ForgetPorts(ctx, name)
}

// removeFromNode observes the app on one node and carries out the plan
// that removes it there.
func (r *Reconciler) removeFromNode(ctx context.Context, d *api.Deployment, t target) error {
	name := d.Metadata.Name
	n := &nodeRun{node: t.node.Metadata.Name, app: name, spec: &d.Spec, ex: r.Connector.Executor(t.node, t.via),
		mirrors: r.Mirrors, timeout: r.stepTimeout(), purgeData: d.Metadata.Annotations[api.AnnotationPurgeData] == "true",
		log: func(stream, text string) {
			r.log().Info("removing app", "deployment", name, "node", t.node.Metadata.Name, "stream", stream, "text", text)
		}}
	obs, err := nodescript.ObserveAppOn(ctx, n.ex, nodescript.ObserveAppInput{App: name, Runtime: d.Spec.Runtime}, 30*time.Second)
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
		return fmt.Errorf("node %s: %w", n.node, err)
	}
	return nil
}
