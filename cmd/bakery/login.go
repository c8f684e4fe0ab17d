package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

func newLoginCmd(a *app) *cobra.Command {
	var tokenStdin bool
	cmd := &cobra.Command{
		Use:   "login --server URL --token TOKEN",
		Short: "Check a server address and token, and save them in the config file",
		Long: `Check that the server answers and accepts the token, then save both in the
client config file, so that later commands need neither flags nor
environment variables.

The file is $XDG_CONFIG_HOME/bakery/config.yaml (usually
~/.config/bakery/config.yaml; BAKERY_CONFIG or --config names another),
written with permissions 0600:

  server: http://127.0.0.1:8080
  token: bkr_...

'bakery server' prints the admin token and this exact command on its first
start; the token is also in <data>/admin-token.`,
		Example: `  bakery login --server http://127.0.0.1:8080 --token bkr_xxxxxxxx

  # Keep the token out of the shell history
  bakery login --server https://bakery.example.com --token-stdin < token.txt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenStdin {
				if cmd.Flags().Changed("token") {
					return usageErrorf("give --token or --token-stdin, not both")
				}
				line, err := bufio.NewReader(a.in).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("read the token from stdin: %w", err)
				}
				a.token = strings.TrimSpace(line)
				if err := cmd.Flags().Set("token", a.token); err != nil {
					return err
				}
			}
			r, err := a.resolve(cmd)
			if err != nil {
				return err
			}
			if r.server == "" {
				return usageErrorf("no server given: bakery login --server URL --token TOKEN")
			}
			if r.token == "" {
				return usageErrorf("no token given: bakery login --server %s --token TOKEN", r.server)
			}
			u, err := client.ParseServerURL(r.server)
			if err != nil {
				return err
			}
			c, err := client.New(u.String(), r.token, client.WithVersion(version), client.WithTimeout(a.timeout))
			if err != nil {
				return err
			}
			// Version alone might one day be public; listing needs the token.
			if _, err := c.List(cmd.Context(), api.KindNode, ""); err != nil {
				if client.IsUnauthorized(err) {
					return fmt.Errorf("the server at %s rejected the token (from %s): %w", c.Server(), r.tokenSrc, err)
				}
				return fmt.Errorf("login: %w", a.explain(c, err))
			}
			if err := writeConfig(r.configPath, config{Server: c.Server(), Token: r.token}); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Logged in to %s", c.Server())
			if v, err := c.Version(cmd.Context()); err == nil {
				fmt.Fprintf(a.out, " (server %s, %s store)", v.Version, v.Store)
			}
			fmt.Fprintf(a.out, "; configuration saved in %s\n", r.configPath)
			return nil
		},
	}
	cmd.Flags().BoolVar(&tokenStdin, "token-stdin", false, "read the token from the first line of stdin")
	return cmd
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%q takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
