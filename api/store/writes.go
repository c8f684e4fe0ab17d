package store

import (
	"context"

	"bakery.dev/bakery/api"
)

// Writes implements Writer by running each write in a transaction of its
// own. A Store embeds it, setting Txn to its own Txn method, so that its
// single writes and its transactions share one code path.
type Writes struct {
	Txn func(ctx context.Context, fn func(tx Tx) error) error
}

// Create implements Writer.
func (w Writes) Create(ctx context.Context, obj api.Object) (out api.Object, err error) {
	err = w.Txn(ctx, func(tx Tx) error {
		out, err = tx.Create(ctx, obj)
		return err
	})
	return out, err
}

// Update implements Writer.
func (w Writes) Update(ctx context.Context, obj api.Object) (out api.Object, err error) {
	err = w.Txn(ctx, func(tx Tx) error {
		out, err = tx.Update(ctx, obj)
		return err
	})
	return out, err
}

// UpdateStatus implements Writer.
func (w Writes) UpdateStatus(ctx context.Context, obj api.Object) (out api.Object, err error) {
	err = w.Txn(ctx, func(tx Tx) error {
		out, err = tx.UpdateStatus(ctx, obj)
		return err
	})
	return out, err
}

// Delete implements Writer.
func (w Writes) Delete(ctx context.Context, kind, name, resourceVersion string) error {
	return w.Txn(ctx, func(tx Tx) error {
		return tx.Delete(ctx, kind, name, resourceVersion)
	})
}
