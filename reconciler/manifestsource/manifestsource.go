package manifestsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/manifests"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/manifestsync"
	"bakery.dev/bakery/reconciler/source"
)

// ManifestSource condition reasons (besides the shared
// reconciler.ReasonInvalidSpec, ReasonSuspended and ReasonSourceUnavailable).
const (
	ReasonSynced        = "Synced"
	ReasonSyncFailed    = "SyncFailed"
	ReasonInvalidBundle = "InvalidManifests"
	ReasonDryRun        = "DryRun"
)

// Limits on what a manifest source may hold.
const (
	maxManifestFile  = manifests.MaxBytes
	maxManifestTotal = 32 << 20
)

// Reconciler keeps the manifests of a git branch applied:
// fetch the branch, read the files under the path at the resolved commit,
// decode and validate them strictly, then apply them and prune as one
// unit (package manifestsync). A bundle with any problem applies nothing;
// the problem is the source's status. It then waits for the interval or a
// push webhook.
type Reconciler struct {
	Store   store.Store
	Mirrors *source.Mirrors
	// DeleteViaLoop prunes deployments through the deployment loop (the
	// app is removed from its nodes first), as when the loop runs.
	DeleteViaLoop bool
	// AllowLocalNodes lets a source whose spec.allowedKinds holds Node
	// write Nodes with spec.local (the server's --allow-local-nodes).
	AllowLocalNodes bool
	Logger          *slog.Logger
	Events          *events.Recorder
}

// SourceOwner is the owner annotation value of objects a ManifestSource
// named name created.
func SourceOwner(name string) string { return api.KindManifestSource + "/" + name }

func (r *Reconciler) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// Reconcile implements Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconciler.Request) (reconciler.Result, error) {
	obj, err := r.Store.Get(ctx, api.KindManifestSource, req.Name)
	if errors.Is(err, store.ErrNotFound) {
		return reconciler.Result{}, nil
	}
	if err != nil {
		return reconciler.Result{}, err
	}
	ms := obj.(*api.ManifestSource)
	gen := ms.Metadata.Generation
	ms.Default()
	// A sync asked for before this read is carried out by this reconcile.
	request := ms.Status.SyncRequested
	if ms.Spec.Suspend {
		return reconciler.Result{}, r.setStatus(ctx, ms.Metadata.Name, func(s *api.ManifestSourceStatus) {
			s.ObservedGeneration = gen
			s.SyncHandled = request
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: reconciler.ReasonSuspended, ObservedGeneration: gen})
		})
	}
	if errs := ms.Validate(); len(errs) > 0 {
		msg := errs.Error()
		err := r.setStatus(ctx, ms.Metadata.Name, func(s *api.ManifestSourceStatus) {
			s.ObservedGeneration = gen
			s.SyncHandled = request
			s.LastError = msg
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionTrue, Reason: reconciler.ReasonInvalidSpec, Message: msg, ObservedGeneration: gen})
			api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: reconciler.ReasonInvalidSpec, Message: msg, ObservedGeneration: gen})
		})
		return reconciler.Result{}, reconciler.Terminal(errors.Join(fmt.Errorf("invalid spec: %s", msg), err))
	}
	interval := ms.Spec.Interval.Duration
	commit, err := r.Mirrors.Resolve(ctx, ms.Spec.Repo, ms.Spec.Branch, "")
	if err != nil {
		return r.failed(ctx, ms, "", reconciler.ReasonSourceUnavailable, err, interval)
	}
	objs, err := r.readBundle(ctx, ms, commit)
	if err != nil {
		return r.failed(ctx, ms, commit, ReasonInvalidBundle, err, interval)
	}
	res, err := manifestsync.Sync(ctx, r.Store, objs, manifestsync.Options{
		Owner: SourceOwner(ms.Metadata.Name), Prune: ms.Spec.PruneEnabled(), DryRun: ms.Spec.DryRun, DeleteViaLoop: r.DeleteViaLoop,
		Policy: manifests.Policy{LocalNodes: r.AllowLocalNodes, Kinds: ms.Spec.AllowedKinds, Owner: api.Ref(ms)},
	})
	if err != nil {
		return r.failed(ctx, ms, commit, ReasonSyncFailed, err, interval)
	}
	err = r.synced(ctx, ms, gen, request, commit, res)
	return reconciler.Result{RequeueAfter: interval}, err
}

// failed records a failed sync on the source's status. The source is
// retried at its interval: a broken commit stays broken until the next
// push (which a webhook reports at once).
func (r *Reconciler) failed(ctx context.Context, ms *api.ManifestSource, commit, reason string, cause error, interval time.Duration) (reconciler.Result, error) {
	gen := ms.Metadata.Generation
	msg := cause.Error()
	if commit != "" {
		msg = "commit " + api.ShortCommit(commit) + ": " + msg
	}
	if ms.Status.LastError != msg {
		r.Events.Record(ctx, &api.Event{Type: api.EventManifestsFailed, Severity: api.SeverityError, Object: api.Ref(ms), Message: msg})
	}
	err := r.setStatus(ctx, ms.Metadata.Name, func(s *api.ManifestSourceStatus) {
		s.ObservedGeneration = gen
		s.SyncHandled = ms.Status.SyncRequested
		if commit != "" {
			s.LastAttemptedCommit = commit
		}
		s.LastError = msg
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: gen})
	})
	if reason == reconciler.ReasonSourceUnavailable {
		// Fetching may work again soon: retry with backoff.
		return reconciler.Result{}, errors.Join(cause, err)
	}
	return reconciler.Result{RequeueAfter: interval}, err
}

func summary(res manifestsync.Result) string {
	var parts []string
	if len(res.Created) > 0 {
		parts = append(parts, "created "+strings.Join(res.Created, ", "))
	}
	if len(res.Changed) > 0 {
		parts = append(parts, "changed "+strings.Join(res.Changed, ", "))
	}
	if len(res.Pruned) > 0 {
		parts = append(parts, "pruned "+strings.Join(res.Pruned, ", "))
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, "; ")
}

// manifestFile matches the manifest files under dir of a tree.
func manifestFile(dir string) func(p string) bool {
	return func(p string) bool {
		rel := p
		if dir != "." {
			rel = strings.TrimPrefix(p, dir+"/")
			if rel == p && p != dir {
				return false
			}
			if p == dir {
				rel = path.Base(p) // the path names one file
			}
		}
		return manifests.IsManifestName(rel)
	}
}

func (r *Reconciler) setStatus(ctx context.Context, name string, mutate func(*api.ManifestSourceStatus)) error {
	for attempt := 0; ; attempt++ {
		obj, err := r.Store.Get(ctx, api.KindManifestSource, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ms := obj.(*api.ManifestSource)
		mutate(&ms.Status)
		_, err = r.Store.UpdateStatus(ctx, ms)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue
		}
		return err
	}
}

// readBundle reads the manifests under the source's path at commit,
// decodes them strictly and checks them as one bundle.
func (r *Reconciler) readBundle(ctx context.Context, ms *api.ManifestSource, commit string) ([]api.Object, error) {
	files, err := r.Mirrors.Files(ctx, ms.Spec.Repo, commit, ms.Spec.Path, manifestFile(ms.Spec.Path), maxManifestFile, maxManifestTotal)
	if err != nil {
		return nil, err
	}
	mf := make([]manifests.File, len(files))
	for i, f := range files {
		mf[i] = manifests.File{Name: f.Path, Data: f.Data}
	}
	objs, err := manifests.DecodeFiles(mf)
	if err == nil {
		err = manifests.Check(objs)
	}
	if err == nil {
		for _, o := range objs {
			if o.GetTypeMeta().Kind == api.KindManifestSource && o.GetObjectMeta().Name == ms.Metadata.Name {
				err = fmt.Errorf("%s: a manifest source cannot manage itself", api.Ref(o))
			}
		}
	}
	return objs, err
}

// synced records a sync that worked: a log line and an event when it did
// something, and the source's status.
func (r *Reconciler) synced(ctx context.Context, ms *api.ManifestSource, gen int64, request, commit string, res manifestsync.Result) error {
	if !res.Empty() || ms.Status.LastSyncedCommit != commit {
		r.log().Info("manifest source synced", "source", ms.Metadata.Name, "commit", api.ShortCommit(commit), "dryRun", ms.Spec.DryRun,
			"created", res.Created, "changed", res.Changed, "pruned", res.Pruned)
	}
	if !res.Empty() && !ms.Spec.DryRun {
		r.Events.Record(ctx, &api.Event{Type: api.EventManifestsSynced, Severity: api.SeverityInfo, Object: api.Ref(ms),
			Message: fmt.Sprintf("commit %s: %s", api.ShortCommit(commit), summary(res))})
	}
	return r.setStatus(ctx, ms.Metadata.Name, func(s *api.ManifestSourceStatus) {
		s.ObservedGeneration = gen
		s.SyncHandled = request
		s.LastAttemptedCommit = commit
		s.LastSyncedCommit = commit
		s.LastError = ""
		if !res.Empty() || s.DryRun != ms.Spec.DryRun || s.LastSyncTime == nil {
			// The lists keep what the last sync that did something did.
			s.Created, s.Changed, s.Pruned = res.Created, res.Changed, res.Pruned
			s.LastSyncTime = api.Now()
		}
		s.DryRun = ms.Spec.DryRun
		s.Unchanged = res.Unchanged
		s.Inventory = res.Inventory
		reason, msg := ReasonSynced, fmt.Sprintf("applied commit %s (%d objects)", api.ShortCommit(commit), len(res.Inventory))
		if ms.Spec.DryRun {
			reason, msg = ReasonDryRun, fmt.Sprintf("dry run of commit %s: %s", api.ShortCommit(commit), summary(res))
		}
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: reason, Message: msg, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionFalse, Reason: reason, ObservedGeneration: gen})
		api.SetCondition(&s.Conditions, api.Condition{Type: api.ConditionDegraded, Status: api.ConditionFalse, Reason: reason, ObservedGeneration: gen})
	})
}
