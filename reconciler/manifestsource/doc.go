// Package manifestsource is the ManifestSource reconciler: it keeps the
// manifests of a git branch applied — fetch, read the files at the
// resolved commit, decode and validate them, apply and prune them as one
// unit — and records the outcome in the source's status.
//
// The sync engine itself (apply, prune, inventory) and the watched
// manifests directory are reconciler/manifestsync; git access is
// reconciler/source. It does not roll anything out: the Deployments it
// applies are the deployment reconciler's.
package manifestsource
