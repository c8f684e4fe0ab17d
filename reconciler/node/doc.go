// Package node is the Node reconciler: it connects to each node (pinning
// its host key on first use), checks that it answers and has the tools
// Bakery needs, and records what it observed — OS, kernel, tools, disk
// usage — with the conditions Reachable, Ready and Stalled (a host key
// mismatch stalls the node until its spec changes). It raises
// NodeUnreachable, NodeRecovered and DiskLow on transitions.
//
// It observes only; it installs nothing on a node (the deployment
// reconciler does what runs there) and does not hold SSH connections
// itself (reconciler/nodeconn does).
package node
