package server

import (
	"errors"
	"net/http"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// ruleError is the 409 of a write breaking a rule spanning several
// objects (store.RuleError: an ingress host belongs to one Deployment),
// naming the objects in its message and each field in its details. For a
// bundle (objs), a field path names its document.
func ruleError(e *store.RuleError, objs []api.Object) *Error {
	out := &Error{Status: http.StatusConflict, Message: e.Message}
	for _, v := range e.Violations {
		field := v.Field
		for i, o := range objs {
			if o.GetTypeMeta().Kind == v.Kind && o.GetObjectMeta().Name == v.Name {
				field = docPrefix(i+1, v.Kind, v.Name) + ": " + field
				break
			}
		}
		out.Details = append(out.Details, Detail{Field: field, Reason: v.Reason})
	}
	return out
}

// bundleRuleError is err, or, when err is a broken rule, its 409 with
// field paths naming the documents of the bundle objs.
func bundleRuleError(err error, objs []api.Object) error {
	var rerr *store.RuleError
	if errors.As(err, &rerr) {
		return ruleError(rerr, objs)
	}
	return err
}
