// Package deployment is the Deployment reconciler: it rolls a
// Deployment out to its nodes and keeps it there. One reconcile loads the
// deployment, handles a deletion request, resolves the source commit and
// the secrets, observes every node in one SSH round trip, plans each
// node's actions with the pure function Plan, acts on them in batches
// (fetch, build, start, health check, switch nginx, stop, prune) while
// recording the rollout and its log, and finally writes the deployment's
// status from what those steps found. A converged deployment costs one
// round trip per node and writes nothing.
//
// It also validates and records the actions users ask for (deploy now,
// redeploy, restart, rollback), says which of them supersede a rollout in
// flight (Supersedes), and streams the apps' runtime logs.
//
// It does not schedule itself (reconciler/internal/controller does), hold
// SSH connections (reconciler/nodeconn), hold shell scripts (every script
// it runs on a node is a reconciler/nodescript wrapper), store rollout
// logs (reconciler/rolloutlog) or know HTTP.
package deployment
