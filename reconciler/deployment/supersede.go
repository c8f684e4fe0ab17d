package deployment

import (
	"encoding/json"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler"
)

var _ reconciler.Superseder = (*Reconciler)(nil)

// Supersedes implements reconciler.Superseder: besides a new spec, the
// actions recorded in a deployment's status (a rollback or redeploy pin,
// a restart request) and a webhook's push of a new commit
// (status.lastPush, written by whichever control plane received it) make
// a rollout in flight obsolete. It is "" for other objects.
func (r *Reconciler) Supersedes(o api.Object) string {
	d, ok := o.(*api.Deployment)
	if !ok {
		return ""
	}
	push := ""
	if p := d.Status.LastPush; p != nil {
		push = p.Commit
	}
	pin := d.Status.Pin
	if pin != nil && pin.RefHead != "" {
		// RefHead is the loop's own bookkeeping, written while it runs:
		// not an action.
		p := *pin
		p.RefHead = ""
		pin = &p
	}
	b, _ := json.Marshal([3]any{pin, d.Status.Restart, push})
	return string(b)
}
