package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"bakery.dev/bakery/api"
)

// Rules that span several objects are enforced by every store inside the
// transaction that writes the objects, after fn and before the commit, so
// that they hold for every writer (the API, manifest sources, the watched
// directory, the control loop) and two concurrent writers cannot both
// pass. They concern only what the transaction creates or whose spec it
// changes: a conflict among objects already stored is not held against an
// unrelated write. The rules:
//
//   - an ingress host belongs to one Deployment.
//
// A broken rule fails the transaction with a *RuleError.

// ErrRollback, returned (or wrapped) by a transaction's fn, ends the
// transaction without writing anything, after checking the rules: a dry
// run. Txn then returns fn's error, or the rules' error when one is
// broken.
var ErrRollback = errors.New("store: transaction rolled back")

// RuleError is a write that breaks a rule spanning several objects (see
// the rules above). The API answers it with 409 Conflict.
type RuleError struct {
	// Message names every object involved.
	Message string
	// Violations say which field of which written object breaks a rule.
	Violations []Violation
}

// Violation is one field of a written object that breaks a rule.
type Violation struct {
	// Kind and Name name the written object.
	Kind, Name string
	// Field is the field's path in the object ("spec.ingress.hosts[0]").
	Field  string
	Reason string
}

func (e *RuleError) Error() string {
	s := e.Message
	for _, v := range e.Violations {
		s += fmt.Sprintf("; %s/%s: %s: %s", v.Kind, v.Name, v.Field, v.Reason)
	}
	return s
}

// Written records the objects a transaction created or whose spec it
// changed, for the rules. A store keeps one per transaction, calls Add
// from its Create and Update, and Check before it commits. It is safe for
// concurrent use.
type Written struct {
	mu   sync.Mutex
	refs []writtenRef
	seen map[writtenRef]bool
}

type writtenRef struct{ kind, name string }

// Add records that kind/name was created or its spec changed.
func (w *Written) Add(kind, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := writtenRef{kind, name}
	if w.seen[r] {
		return
	}
	if w.seen == nil {
		w.seen = map[writtenRef]bool{}
	}
	w.seen[r] = true
	w.refs = append(w.refs, r)
}

// Check runs the rules for the recorded objects as tx holds them now (an
// object deleted again is skipped).
func (w *Written) Check(ctx context.Context, tx Reader) error {
	w.mu.Lock()
	refs := append([]writtenRef(nil), w.refs...)
	w.mu.Unlock()
	var deps []*api.Deployment
	for _, r := range refs {
		if r.kind != api.KindDeployment {
			continue
		}
		o, err := tx.Get(ctx, r.kind, r.name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check rules: %w", err)
		}
		if d, ok := o.(*api.Deployment); ok && len(claimedHosts(d)) > 0 {
			deps = append(deps, d)
		}
	}
	if len(deps) == 0 {
		return nil
	}
	return checkIngressHosts(ctx, tx, deps)
}

// hostClaim is a host name a deployment's nginx site serves (a host, or
// the from of a redirect) and the field that names it.
type hostClaim struct{ field, host string }

func claimedHosts(d *api.Deployment) []hostClaim {
	ing := d.Spec.Ingress
	if ing == nil {
		return nil
	}
	var out []hostClaim
	for j, h := range ing.Hosts {
		out = append(out, hostClaim{fmt.Sprintf("spec.ingress.hosts[%d]", j), h})
	}
	for j, r := range ing.Redirects {
		out = append(out, hostClaim{fmt.Sprintf("spec.ingress.redirects[%d].from", j), r.From})
	}
	return out
}

// checkIngressHosts enforces "an ingress host belongs to one Deployment"
// for written, which claim hosts (ingress hosts and redirected hosts).
func checkIngressHosts(ctx context.Context, tx Reader, written []*api.Deployment) error {
	all, err := tx.List(ctx, api.KindDeployment, ListOptions{})
	if err != nil {
		return fmt.Errorf("check ingress hosts: %w", err)
	}
	claims := map[string][]string{} // host → deployments claiming it
	for _, o := range all {
		d := o.(*api.Deployment)
		for _, c := range claimedHosts(d) {
			claims[c.host] = append(claims[c.host], d.Metadata.Name)
		}
	}
	e := &RuleError{}
	var clashes []string
	reported := map[string]bool{}
	for _, d := range written {
		for _, c := range claimedHosts(d) {
			h := c.host
			for _, other := range claims[h] {
				if other == d.Metadata.Name {
					continue
				}
				e.Violations = append(e.Violations, Violation{Kind: api.KindDeployment, Name: d.Metadata.Name,
					Field:  c.field,
					Reason: fmt.Sprintf("host %q is also claimed by Deployment/%s", h, other)})
				pair := []string{d.Metadata.Name, other}
				sort.Strings(pair)
				key := h + " " + strings.Join(pair, " ")
				if !reported[key] {
					reported[key] = true
					clashes = append(clashes, fmt.Sprintf("ingress host %q is claimed by Deployment/%s and Deployment/%s", h, pair[0], pair[1]))
				}
			}
		}
	}
	if len(e.Violations) == 0 {
		return nil
	}
	e.Message = strings.Join(clashes, "; ")
	return e
}
