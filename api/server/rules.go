package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// checkRules enforces the rules that span several objects, inside the
// transaction that wrote the objects in written (so that two concurrent
// writers cannot both pass). Rules concern only what is being written: a
// conflict among objects already stored is not held against an unrelated
// write. In a bundle, field paths name the document (written[i] is
// document i+1).
//
// Rules: an ingress host belongs to one Deployment (409 naming both).
func checkRules(ctx context.Context, tx store.Tx, written []api.Object, bundle bool) error {
	return checkIngressHosts(ctx, tx, written, bundle)
}

func checkIngressHosts(ctx context.Context, tx store.Tx, written []api.Object, bundle bool) error {
	wants := false
	for _, o := range written {
		if d, ok := o.(*api.Deployment); ok && d.Spec.Ingress != nil && len(d.Spec.Ingress.Hosts) > 0 {
			wants = true
		}
	}
	if !wants {
		return nil
	}
	all, err := tx.List(ctx, api.KindDeployment, store.ListOptions{})
	if err != nil {
		return fmt.Errorf("check ingress hosts: %w", err)
	}
	claims := map[string][]string{} // host → deployments claiming it
	for _, o := range all {
		d := o.(*api.Deployment)
		if d.Spec.Ingress == nil {
			continue
		}
		for _, h := range d.Spec.Ingress.Hosts {
			claims[h] = append(claims[h], d.Metadata.Name)
		}
	}
	var details []Detail
	var clashes []string
	reported := map[string]bool{}
	for i, o := range written {
		d, ok := o.(*api.Deployment)
		if !ok || d.Spec.Ingress == nil {
			continue
		}
		for j, h := range d.Spec.Ingress.Hosts {
			for _, other := range claims[h] {
				if other == d.Metadata.Name {
					continue
				}
				field := fmt.Sprintf("spec.ingress.hosts[%d]", j)
				if bundle {
					field = docPrefix(i+1, api.KindDeployment, d.Metadata.Name) + ": " + field
				}
				details = append(details, Detail{Field: field,
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
	if len(details) == 0 {
		return nil
	}
	return &Error{Status: http.StatusConflict, Message: strings.Join(clashes, "; "), Details: details}
}
