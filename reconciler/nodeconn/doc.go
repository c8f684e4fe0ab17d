// Package nodeconn is how the control loop reaches nodes: the control
// plane's SSH identity (created once, kept sealed in the store and
// shared by every control plane on it), and the Connector that hands out
// an executor per node — pooled SSH with the node's pinned host key,
// through its jump host, or the local executor for a local node.
//
// It runs no command of its own and knows nothing of what runs on a node
// (reconciler/deployment, reconciler/node do); the SSH transport itself
// is sshexec.
package nodeconn
