package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/aymanbagabas/go-udiff"
	"sigs.k8s.io/yaml"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

func (s *Server) apply(w http.ResponseWriter, r *http.Request) (any, error) {
	dryRun := false
	if v := r.URL.Query().Get("dryRun"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badField("dryRun", "must be true or false, not %q", v)
		}
		dryRun = b
	}
	objs, err := s.decodeBundle(w, r)
	if err != nil {
		return nil, err
	}
	if err := s.sealSecrets(r.Context(), objs, true); err != nil {
		return nil, err
	}
	// The store enforces the rules spanning several objects (one
	// Deployment per ingress host); their field paths name the document.
	res, err := store.Apply(r.Context(), s.store, objs, store.ApplyOptions{DryRun: dryRun, Applied: recordApplier})
	if err != nil {
		return nil, bundleRuleError(err, objs)
	}
	out := api.ApplyResponse{DryRun: dryRun, Results: make([]api.ApplyResult, 0, len(res))}
	for _, rr := range res {
		d, err := applyDiff(rr.Old, rr.New)
		if err != nil {
			return nil, err
		}
		out.Results = append(out.Results, api.ApplyResult{
			Kind:       rr.New.GetTypeMeta().Kind,
			Name:       rr.New.GetObjectMeta().Name,
			Action:     rr.Action,
			Generation: rr.New.GetObjectMeta().Generation,
			Diff:       d,
		})
	}
	return out, nil
}

// recordApplier records, in the status of every deployment whose spec the
// apply creates or changes, who applied it (status.appliedBy): the first
// rollout of that generation names them as TriggeredBy. Same transaction:
// the loop never sees the new spec without it.
func recordApplier(ctx context.Context, tx store.Tx, res []store.ApplyResult) error {
	by := TokenName(ctx)
	if by == "" {
		return nil
	}
	for _, rr := range res {
		d, ok := rr.New.(*api.Deployment)
		if !ok || rr.Action == store.Unchanged || rr.Old != nil && rr.Old.GetObjectMeta().Generation == d.Metadata.Generation {
			continue
		}
		c := d.DeepCopyObject().(*api.Deployment)
		c.Status.AppliedBy = &api.AppliedBy{By: by, Generation: c.Metadata.Generation}
		if _, err := tx.UpdateStatus(ctx, c); err != nil {
			return fmt.Errorf("%s: record who applied it: %w", api.Ref(d), err)
		}
	}
	return nil
}

// applyDiff returns the unified diff of the user-owned parts of live (nil
// when created) and applied.
func applyDiff(live, applied api.Object) (string, error) {
	ref := api.Ref(applied)
	before := ""
	if live != nil {
		b, err := userYAML(live)
		if err != nil {
			return "", err
		}
		before = b
	}
	after, err := userYAML(applied)
	if err != nil {
		return "", err
	}
	return udiff.Unified(ref+" (live)", ref+" (applied)", before, after), nil
}

// userYAML is the YAML of what users write: metadata.labels,
// metadata.annotations and spec.
func userYAML(o api.Object) (string, error) {
	o = maskSealed(o)
	m := o.GetObjectMeta()
	v := struct {
		Metadata struct {
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"metadata"`
		Spec json.RawMessage `json:"spec"`
	}{Spec: o.SpecJSON()}
	v.Metadata.Labels = m.Labels
	v.Metadata.Annotations = m.Annotations
	b, err := yaml.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", api.Ref(o), err)
	}
	return string(b), nil
}
