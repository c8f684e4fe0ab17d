package server

import (
	"context"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// CheckBundleRules enforces, inside tx, the rules spanning several objects
// that every write through the API obeys (an ingress host belongs to one
// Deployment), for a bundle written outside the API: manifest sources
// and the watched directory pass it to their syncs, so that a bundle
// breaking a rule applies nothing.
func CheckBundleRules(ctx context.Context, tx store.Tx, written []api.Object) error {
	return checkRules(ctx, tx, written, true)
}
