// Package manifestsync keeps a bundle of manifests applied on behalf of
// one owner — a git ManifestSource or a watched local directory — and
// prunes what the owner created and no longer holds.
//
// [Sync] writes the whole bundle and the prunes in one store transaction:
// everything or nothing. Objects it writes carry the annotation
// api.AnnotationOwner naming the owner; an object is pruned only when it
// carries that owner's annotation, so objects created by hand or by
// another owner are never pruned (and never taken over from another
// owner). [Watcher] watches a directory with fsnotify and calls a sync
// function when its manifests change (debounced; editor temp files and
// half-written files are not applied).
//
// The package does not fetch git repositories (package source does) and
// does not roll anything out: the deployment loop reacts to the store.
package manifestsync
