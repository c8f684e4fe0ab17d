package store

import (
	"context"
	"errors"
	"fmt"

	"bakery.dev/bakery/api"
)

// ApplyAction says what Apply did to one object (the API answers with
// it: api.ApplyAction).
type ApplyAction = api.ApplyAction

// Apply actions, as kubectl prints them.
const (
	Created    = api.ApplyCreated
	Configured = api.ApplyConfigured
	Unchanged  = api.ApplyUnchanged
)

// ApplyResult is the outcome for one object of a bundle.
type ApplyResult struct {
	Action ApplyAction
	// Old is the stored object before the apply (nil when created).
	Old api.Object
	// New is the object as stored after the apply (as it would be, on a dry run).
	New api.Object
}

// ApplyOptions change how Apply works.
type ApplyOptions struct {
	// DryRun computes the results and rolls everything back.
	DryRun bool
	// Applied, if set, runs inside the transaction after every object
	// has been written, with the results (not to be changed); an error aborts the whole bundle. It is
	// where the API records who applied a changed spec.
	Applied func(ctx context.Context, tx Tx, results []ApplyResult) error
}

var errDryRun = fmt.Errorf("dry run: %w", ErrRollback)

// Apply creates or updates every object of a bundle in one transaction:
// all of it is applied or none. Objects must already be defaulted and
// validated. Labels, annotations and spec are taken from the bundle; the
// stored status is kept. A bundle naming one object twice is refused. The
// store checks the rules spanning several objects (a *RuleError), on a
// dry run too.
func Apply(ctx context.Context, s Store, objs []api.Object, opts ApplyOptions) ([]ApplyResult, error) {
	seen := map[string]int{}
	for i, o := range objs {
		ref := api.Ref(o)
		if j, dup := seen[ref]; dup {
			return nil, fmt.Errorf("%w: %s appears twice in the bundle (objects %d and %d)", ErrInvalid, ref, j+1, i+1)
		}
		seen[ref] = i
	}
	var results []ApplyResult
	err := s.Txn(ctx, func(tx Tx) error {
		results = results[:0]
		for _, o := range objs {
			r, err := applyOne(ctx, tx, o)
			if err != nil {
				return fmt.Errorf("%s: %w", api.Ref(o), err)
			}
			results = append(results, r)
		}
		if opts.Applied != nil {
			if err := opts.Applied(ctx, tx, results); err != nil {
				return err
			}
		}
		if opts.DryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	return results, nil
}

func applyOne(ctx context.Context, tx Tx, o api.Object) (ApplyResult, error) {
	kind, name := o.GetTypeMeta().Kind, o.GetObjectMeta().Name
	cur, err := tx.Get(ctx, kind, name)
	if errors.Is(err, ErrNotFound) {
		n, err := tx.Create(ctx, o.DeepCopyObject())
		return ApplyResult{Action: Created, New: n}, err
	}
	if err != nil {
		return ApplyResult{}, err
	}
	specChanged, metaChanged := Changed(cur, o)
	if !specChanged && !metaChanged {
		return ApplyResult{Action: Unchanged, Old: cur, New: cur}, nil
	}
	d := o.DeepCopyObject()
	d.GetObjectMeta().ResourceVersion = cur.GetObjectMeta().ResourceVersion
	n, err := tx.Update(ctx, d)
	return ApplyResult{Action: Configured, Old: cur, New: n}, err
}
