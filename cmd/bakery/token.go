package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"bakery.dev/bakery/api"
)

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens",
		Long: `API tokens let the CLI and scripts call the server: every request carries
one ("Authorization: Bearer bkr_…"). The server keeps only a hash of each
token, so a token's value is shown once, when it is created, and never
again. The web UI's settings page manages the same tokens.

The token 'admin' is created when the server first starts on an empty
store; give every machine or script its own token, so that one can be
revoked without the others, and so that what each did is recorded under
its name (a deployment's appliedBy, a rollout's triggeredBy).`,
		Example: `  bakery token create ci > ci.token    # the value, shown this once
  bakery token list
  bakery token revoke ci`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTokenCreateCmd(a), newTokenListCmd(a), newTokenRevokeCmd(a))
	return cmd
}

// checkTokenOutput accepts "" (the default) and the formats given.
func checkTokenOutput(o string, formats ...string) error {
	if o == "" {
		return nil
	}
	for _, f := range formats {
		if o == f {
			return nil
		}
	}
	return usageErrorf("--output must be one of %s, not %q", strings.Join(formats, ", "), o)
}

// writeAs writes v as json or yaml.
func writeAs(w io.Writer, format string, v any) error {
	if format == "json" {
		return writeJSON(w, v)
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func newTokenCreateCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API token and print it (shown this once only)",
		Long: `Create the API token NAME (a DNS-1123 label: lower-case letters, digits
and '-') and print its value on standard output, alone on one line, so that
it can go straight into a file or a secret store. It is shown this once:
the server keeps only its hash. With -o json or yaml the name and creation
time come with it.`,
		Example: `  bakery token create ci > ci.token
  bakery login --server https://bakery.example.com --token-stdin < ci.token

  bakery token create laptop -o json`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTokenOutput(output, "json", "yaml"); err != nil {
				return err
			}
			if r := api.ValidateName(args[0]); r != "" {
				return usageErrorf("token name: %s", r)
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), args[0])
			if err != nil {
				return a.explain(c, err)
			}
			if output != "" {
				return writeAs(a.out, output, t)
			}
			fmt.Fprintln(a.out, t.Value)
			fmt.Fprintf(a.errOut, "token/%s created: copy it now, it is not shown again\n", t.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: the token alone)")
	return cmd
}

func newTokenListCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List API tokens (names and ages; never values)",
		Example: `  bakery token list
  bakery token list -o yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTokenOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ts, err := c.Tokens(cmd.Context())
			if err != nil {
				return a.explain(c, err)
			}
			if output == "json" || output == "yaml" {
				return writeAs(a.out, output, api.TokenList{Items: ts})
			}
			tw := newTabWriter(a.out)
			tokenTable(tw, ts, time.Now())
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// tokenTable prints NAME CREATED AGE.
func tokenTable(w io.Writer, ts []api.Token, now time.Time) {
	fmt.Fprintln(w, "NAME\tCREATED\tAGE")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%s\n", t.Name, t.CreatedAt.UTC().Format(time.RFC3339), age(&api.Time{Time: t.CreatedAt}, now))
	}
}

func newTokenRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API token: requests carrying it are refused from now on",
		Long: `Delete the API token NAME. Every request that carries it is answered 401
from now on, at once, on every server sharing the store. Revoking the token
this CLI uses is allowed: log in with another one afterwards. With no token
left at all, the server creates a new 'admin' token when it next starts.`,
		Example: `  bakery token revoke laptop`,
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return a.explain(c, err)
			}
			fmt.Fprintf(a.out, "token/%s revoked\n", args[0])
			return nil
		},
	}
}
