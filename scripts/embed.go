// Package scripts embeds the shell scripts that the bakery binary serves or
// runs itself — today the node installer, which `bakery server` serves at
// /install-node-agent.sh so that a new node can be bootstrapped with one
// curl | sudo bash line. The scripts stay plain files in this folder so they
// can be read, linted and run by hand.
package scripts

import _ "embed"

// InstallNodeAgent is scripts/install-node-agent.sh.
//
//go:embed install-node-agent.sh
var InstallNodeAgent []byte
