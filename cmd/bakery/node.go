package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
)

func newNodeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Prepare and check nodes",
		Long: `Commands for the hosts Bakery deploys to.

A node needs sshd, git, systemd and nginx, and a bakery-agent user that
accepts the control plane's SSH key. 'bakery node bootstrap-command NAME'
prints the one line that sets this up on a fresh Debian/Ubuntu host;
'bakery node verify NAME' connects to it now and shows what was found.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newNodeBootstrapCmd(a), newNodeVerifyCmd(a))
	return cmd
}

func newNodeBootstrapCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap-command NAME",
		Short: "Print the one-line command that prepares a node for Bakery",
		Long: `Print the command to run on a fresh Debian/Ubuntu host (as a user that can
sudo) to make it a Bakery node: it downloads scripts/install-node-agent.sh
from this server and runs it with the control plane's public SSH key. The
installer creates the bakery-agent user, installs git, nginx, certbot and
docker, and allows only the sudo operations deployments need.

The Node object must exist first (bakery apply -f node.yaml).`,
		Example: `  bakery node bootstrap-command web-1
  ssh admin@web-1 "$(bakery node bootstrap-command web-1)"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			b, err := c.NodeBootstrap(cmd.Context(), args[0])
			if err != nil {
				return a.explain(c, err)
			}
			fmt.Fprintln(a.out, b.Command)
			return nil
		},
	}
}

func newNodeVerifyCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "verify NAME",
		Short: "Connect to a node now and show what was found",
		Long: `Ask the server to connect to the node now (over SSH as its user, or
locally for a local node), run the readiness check and record the result in
the node's status. Prints reachability, host key fingerprint, OS, tools and
disk usage. Exits 1 when the node is not reachable or not ready.`,
		Example: `  bakery node verify web-1
  bakery node verify web-1 -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			n, err := c.VerifyNode(cmd.Context(), args[0])
			if err != nil {
				return a.explain(c, err)
			}
			if output != "" {
				return printObjects(a.out, []api.Object{n}, output, true, time.Now())
			}
			s := n.Status
			fmt.Fprintf(a.out, "node/%s\n", n.Metadata.Name)
			fmt.Fprintf(a.out, "  reachable:    %v\n", s.Reachable)
			for _, t := range []string{api.ConditionReachable, api.ConditionReady, api.ConditionStalled} {
				if c := api.FindCondition(s.Conditions, t); c != nil {
					line := fmt.Sprintf("  %-13s %s (%s)", strings.ToLower(t)+":", c.Status, c.Reason)
					if c.Message != "" {
						line += ": " + c.Message
					}
					fmt.Fprintln(a.out, line)
				}
			}
			if s.HostKeyFingerprint != "" {
				fmt.Fprintf(a.out, "  host key:     %s\n", s.HostKeyFingerprint)
			}
			if s.OS != "" {
				fmt.Fprintf(a.out, "  os:           %s (%s)\n", s.OS, s.Kernel)
			}
			if len(s.Tools) > 0 {
				fmt.Fprintf(a.out, "  tools:        %s\n", strings.Join(s.Tools, ", "))
			}
			if d := s.Disk; d != nil {
				fmt.Fprintf(a.out, "  disk:         bakery uses %s; %s free of %s\n", api.HumanBytesCompact(d.BakeryBytes), api.HumanBytesCompact(d.FreeBytes), api.HumanBytesCompact(d.FilesystemBytes))
			}
			if !s.Reachable || !api.IsTrue(s.Conditions, api.ConditionReady) {
				return fmt.Errorf("node %s is not ready", n.Metadata.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: yaml or json (default: a summary)")
	return cmd
}
