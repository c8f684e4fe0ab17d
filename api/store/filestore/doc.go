// Package filestore is Bakery's embedded default store.Store: a directory of
// YAML files, no database. One process owns a data directory at a time.
//
// # On-disk layout
//
//	<dir>/.lock                     flock held by the owning process (holds its pid)
//	<dir>/.rv                       resourceVersion high-water mark (written on deletes)
//	<dir>/.journal                  only while a multi-object commit is applied
//	<dir>/tokens.json               API tokens (0600)
//	<dir>/rollouts/<id>.json        rollout records (0600)
//	<dir>/rollouts/<id>.log         rollout logs, one JSON line each (0600)
//	<dir>/settings/<name>           control-plane settings (store.Settings), raw bytes (0600)
//	<dir>/nodes/<name>.yaml         user-owned: apiVersion, kind, metadata
//	<dir>/deployments/<name>.yaml   (name, labels, annotations) and spec (0644)
//	<dir>/nodes/.state/<name>.json  store-owned: uid, generation,
//	<dir>/deployments/.state/…      resourceVersion, creationTimestamp, the
//	                                hashes of the last accepted spec and spec
//	                                file, and status (0600)
//
// Directories are 0700. Spec files are meant to be read and edited by hand;
// state files are not (they are not watched). Keeping state in a hidden
// subdirectory means status writes, the most frequent ones, never wake the
// watcher of the spec directories, and a listing of nodes/ shows only specs.
// State files are indented JSON: they are the store's, status is JSON
// already (it round-trips exactly), and JSON costs a fraction of YAML to
// write, which matters when a bundle rewrites a thousand objects.
//
// # Writes
//
// Every file is written atomically: a temporary file ".<file>.tmp-*" in the
// target's directory, fsync, rename, fsync of the directory. A transaction
// stages its writes in memory (reads inside it see them) and commits them
// when its function returns nil. A commit touching one object orders its
// renames so that a crash leaves either the old or the new object; a commit
// touching several objects first writes an intent journal (.journal), which
// Open rolls forward after a crash. Leftover temporary files are removed at
// Open and are never read as objects. Transactions are serialised by one
// in-process lock; an exclusive flock on .lock keeps other processes out
// (Open fails with ErrLocked).
//
// resourceVersion is a counter, the decimal string of an integer, that
// survives restarts: at Open it resumes from the largest value found in
// state files and .rv.
//
// # Hand edits
//
// The spec directories are watched with fsnotify. After a quiet period
// (WithDebounce) every spec file that changed is compared with what the
// store last wrote or accepted (a hash of its bytes), so the store's own
// writes are never taken for hand edits. A changed file is decoded strictly
// by package manifests (unknown fields, duplicate keys and wrong types are
// errors, with their field path), defaulted and validated:
//
//   - an edited spec (its hash differs from the recorded one) bumps
//     generation and resourceVersion, keeps status, and emits MODIFIED;
//     edited labels or annotations only bump resourceVersion;
//   - a new file is a new object (uid minted, generation 1): ADDED;
//   - a removed file deletes the object and its state file: DELETED.
//
// Editor artefacts are ignored: only files named "<name>.yaml" not starting
// with a dot are spec files (so ".x.yaml.swp", "x.yaml~", "4913" and the
// store's own temporary files are not). Store-owned fields found in a spec
// file (metadata.uid, generation, resourceVersion, creationTimestamp,
// status) are ignored: the store's values win.
//
// A file that cannot be used (bad YAML, unknown field, invalid spec, name
// or kind not matching the file's place) is reported, never dropped: Open
// fails with an error naming it that wraps store.ErrCorrupt (unless
// TolerateCorrupt is given); while running, the last good object stays in
// memory, the file is left as it is, the problem is logged and listed by
// Problems until the file is fixed or removed. An Update or Delete through
// the store replaces or removes such a file (UpdateStatus leaves it). A
// "<x>.yaml" whose x is not a valid object name is reported the same way.
// Files edited while the store was stopped are compared the same way at
// Open. TolerateCorrupt covers spec and state files only: an unreadable
// tokens.json or rollout record always fails Open (a "<x>.json" in
// rollouts/ whose x is not a rollout ID, see store.CheckRolloutID, is
// ignored with a warning: the store never writes one).
package filestore
