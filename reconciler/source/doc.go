// Package source gets application code from git repositories onto nodes
// without giving nodes any access to the repositories.
//
// The control plane keeps a cache of bare mirrors ([Mirrors]), one per
// repository URL. [Mirrors.Resolve] fetches a mirror and turns a branch, a
// tag or a pinned commit into a full commit id; [Mirrors.Bundle] writes a
// git bundle holding that commit, leaving out what the node already has,
// which the caller copies to the node over the existing SSH connection.
// On the node, the scripts of reconciler/nodescript fetch such a bundle
// into the app's bare repository (Fetch), list the commits the node
// already has (Haves, parsed by ParseHaves) and check a commit out into a
// release directory (Checkout); this package runs nothing on nodes.
//
// For manifest repositories, [Mirrors.Files] reads the files under a
// directory of a resolved commit straight from the mirror (push webhooks
// are matched to the sources that fetch a repository with api.RepoKey).
//
// Git is run with os/exec, and only on the control plane: it alone holds
// credentials for, and a route to, the git host. Nodes need the git binary
// and tar, nothing else; they never talk to the git host.
//
// Every value that reaches git is validated first (commit ids are 40
// lower-case hex digits, URLs and refs never start with "-").
package source
