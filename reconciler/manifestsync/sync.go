package manifestsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/manifests"
)

// Options say how Sync works.
type Options struct {
	// Owner is the value of api.AnnotationOwner on the objects written.
	Owner string
	// Prune deletes objects carrying Owner that the bundle no longer holds.
	Prune bool
	// DryRun computes the result and changes nothing.
	DryRun bool
	// DeleteViaLoop prunes a Deployment by marking it with
	// api.AnnotationDeletionRequested, as `bakery delete` does when a
	// control loop runs: the loop removes the app from its nodes, then
	// deletes the object. Without it objects are deleted at once.
	DeleteViaLoop bool
	// Policy limits what the bundle may hold (the kinds the owner may
	// write; local Nodes only when the server allows them — the zero
	// Policy refuses them). A bundle breaking it applies nothing.
	Policy manifests.Policy
}

// Result says what a sync did (or, on a dry run, would do). Objects are
// named "Kind/name", sorted.
type Result struct {
	Created   []string `json:"created,omitempty"`
	Changed   []string `json:"changed,omitempty"`
	Pruned    []string `json:"pruned,omitempty"`
	Unchanged int      `json:"unchanged,omitempty"`
	// Inventory names every object of the bundle.
	Inventory []string `json:"inventory,omitempty"`
}

// Empty reports whether the sync changed nothing.
func (r Result) Empty() bool { return len(r.Created)+len(r.Changed)+len(r.Pruned) == 0 }

// ErrOwnedByOther is wrapped by the error of a sync whose bundle names an
// object that another owner manages.
var ErrOwnedByOther = errors.New("owned by another manifest source")

// errDryRun rolls a dry run's transaction back (after the store checked
// its rules).
var errDryRun = fmt.Errorf("dry run: %w", store.ErrRollback)

// Sync makes the store hold objs on behalf of opts.Owner, in one
// transaction. The objects must be defaulted and validated already
// (manifests.Check); they are not modified. Each is created or updated
// with api.AnnotationOwner set to the owner (an object that exists
// without an owner is adopted; one owned by another owner is an error
// wrapping ErrOwnedByOther). With Prune, stored objects of any kind
// carrying the owner's annotation that objs does not name are deleted (see
// DeleteViaLoop). A bundle naming one object twice is refused. The store
// enforces the rules spanning several objects (store.RuleError), on a dry
// run too.
func Sync(ctx context.Context, st store.Store, objs []api.Object, opts Options) (Result, error) {
	if opts.Owner == "" {
		return Result{}, errors.New("manifestsync: Options.Owner is required")
	}
	if err := manifests.CheckPolicy(objs, opts.Policy); err != nil {
		return Result{}, err
	}
	want := map[string]bool{}
	var inventory []string
	for _, o := range objs {
		ref := api.Ref(o)
		if want[ref] {
			return Result{}, fmt.Errorf("%w: %s appears twice in the manifests", store.ErrInvalid, ref)
		}
		want[ref] = true
		inventory = append(inventory, ref)
	}
	sort.Strings(inventory)
	var res Result
	err := st.Txn(ctx, func(tx store.Tx) error {
		res = Result{Inventory: inventory}
		for _, o := range objs {
			_, action, err := applyOne(ctx, tx, o, opts.Owner)
			if err != nil {
				return fmt.Errorf("%s: %w", api.Ref(o), err)
			}
			switch action {
			case store.Created:
				res.Created = append(res.Created, api.Ref(o))
			case store.Configured:
				res.Changed = append(res.Changed, api.Ref(o))
			default:
				res.Unchanged++
			}
		}
		if opts.Prune {
			pruned, err := prune(ctx, tx, want, opts)
			if err != nil {
				return err
			}
			res.Pruned = pruned
		}
		if opts.DryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return Result{}, err
	}
	sort.Strings(res.Created)
	sort.Strings(res.Changed)
	sort.Strings(res.Pruned)
	return res, nil
}

// applyOne creates or updates o with the owner annotation.
func applyOne(ctx context.Context, tx store.Tx, o api.Object, owner string) (api.Object, store.ApplyAction, error) {
	d := o.DeepCopyObject()
	m := d.GetObjectMeta()
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[api.AnnotationOwner] = owner
	kind, name := d.GetTypeMeta().Kind, m.Name
	cur, err := tx.Get(ctx, kind, name)
	if errors.Is(err, store.ErrNotFound) {
		m.ResourceVersion = ""
		n, err := tx.Create(ctx, d)
		return n, store.Created, err
	}
	if err != nil {
		return nil, "", err
	}
	if other := cur.GetObjectMeta().Annotations[api.AnnotationOwner]; other != "" && other != owner {
		return nil, "", fmt.Errorf("%w: it is managed by %s", ErrOwnedByOther, other)
	}
	if del := cur.GetObjectMeta().Annotations[api.AnnotationDeletionRequested]; del != "" {
		// Being removed from its nodes: keep the request, or the app
		// would be left half removed; the next sync creates it again.
		m.Annotations[api.AnnotationDeletionRequested] = del
	}
	specChanged, metaChanged := store.Changed(cur, d)
	if !specChanged && !metaChanged {
		return cur, store.Unchanged, nil
	}
	m.ResourceVersion = cur.GetObjectMeta().ResourceVersion
	n, err := tx.Update(ctx, d)
	return n, store.Configured, err
}

// prune deletes the owner's objects that are not wanted.
func prune(ctx context.Context, tx store.Tx, want map[string]bool, opts Options) ([]string, error) {
	var pruned []string
	for _, kind := range api.Kinds() {
		all, err := tx.List(ctx, kind, store.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("prune: list %s: %w", kind, err)
		}
		for _, o := range all {
			m := o.GetObjectMeta()
			if m.Annotations[api.AnnotationOwner] != opts.Owner || want[api.Ref(o)] {
				continue
			}
			if kind == api.KindDeployment && opts.DeleteViaLoop {
				if m.Annotations[api.AnnotationDeletionRequested] != "" {
					continue // already being removed
				}
				m.Annotations[api.AnnotationDeletionRequested] = time.Now().UTC().Format(time.RFC3339)
				if _, err := tx.Update(ctx, o); err != nil {
					return nil, fmt.Errorf("prune %s: %w", api.Ref(o), err)
				}
			} else if err := tx.Delete(ctx, kind, m.Name, m.ResourceVersion); err != nil {
				return nil, fmt.Errorf("prune %s: %w", api.Ref(o), err)
			}
			pruned = append(pruned, api.Ref(o))
		}
	}
	return pruned, nil
}
