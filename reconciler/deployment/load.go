package deployment

import (
	"context"
	"errors"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// load reads the deployment named name, with defaults applied; it returns
// nil (and no error) when the deployment no longer exists.
func (r *Reconciler) load(ctx context.Context, name string) (*api.Deployment, error) {
	obj, err := r.Store.Get(ctx, api.KindDeployment, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d := obj.(*api.Deployment)
	d.Default()
	return d, nil
}
