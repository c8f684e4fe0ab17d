// Package manager wires Bakery's control loop: Manager builds one
// controller per kind (Node, Deployment, ManifestSource) around its
// reconciler, shares the SSH pool, the event recorder and the git
// mirrors between them, runs the analytics collector, and answers what
// the API asks of the loop (deployment actions, pushes from webhooks,
// runtime logs, node verification, manifest source syncs).
//
// It holds no reconcile logic of its own: what a Deployment's reconcile
// does is reconciler/deployment's, and the controller machinery is
// reconciler/internal/controller. It serves no HTTP; cmd/bakery passes it
// to the API server.
package manager
