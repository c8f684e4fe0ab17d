// Package nodefiles generates what Bakery writes on nodes for an app — the
// systemd unit of a slot, the environment file, the nginx site — and
// defines the app's state file (state.json) and the node layout. Everything
// here is pure: text in, text out, so it is tested without a node. The
// generated unit and site pass the checks of the node's bakery-sudo helper
// (scripts/install-node-agent.sh).
package nodefiles
