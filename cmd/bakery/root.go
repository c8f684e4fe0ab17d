package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"bakery.dev/bakery/api/client"
	"bakery.dev/bakery/manifests"
)

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// Exit codes, as kubectl uses them.
const (
	exitOK    = 0
	exitError = 1
	// exitDiff is `bakery diff`'s answer when differences were found.
	exitDiff = 1
	// exitDiffError is `bakery diff`'s answer on an error.
	exitDiffError = 2
)

// exitCodeError makes the command exit with code; err (if any) is printed.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitCodeError) Unwrap() error { return e.err }

// usageError is a mistake in the command line; the hint names --help.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// app holds what every command shares: the streams and the global flags.
type app struct {
	in          io.Reader
	out, errOut io.Writer

	server, token string
	configPath    string
	timeout       time.Duration
}

const rootLong = `Bakery keeps applications deployed on plain Linux hosts the way Kubernetes
keeps pods running: you declare Nodes and Deployments in YAML, and the
server's control loop makes it so over SSH.

One binary: 'bakery server' runs the control plane; every other command is
a client of its HTTP API.

Client configuration (the first one set wins):
  1. the --server and --token flags
  2. the BAKERY_SERVER and BAKERY_TOKEN environment variables
  3. the config file written by 'bakery login' ($XDG_CONFIG_HOME/bakery/config.yaml,
     usually ~/.config/bakery/config.yaml; BAKERY_CONFIG or --config names another)

Exit codes (as kubectl):
  0  success
  1  an error; for 'bakery diff': differences were found
  2  'bakery diff' failed with an error`

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "bakery",
		Short: "Bakery: a self-hosted deployment manager",
		Long:  rootLong,
		Example: `  # Run the control plane (prints an admin token on first start)
  bakery server

  # Point the CLI at it, then apply manifests
  bakery login --server http://127.0.0.1:8080 --token bkr_...
  bakery apply -f examples/hello/
  bakery get deployments -o wide`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return &usageError{errors.New(msg)}
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate("bakery {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })

	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", "", "URL of the Bakery server (env BAKERY_SERVER)")
	pf.StringVar(&a.token, "token", "", "API token (env BAKERY_TOKEN)")
	pf.StringVar(&a.configPath, "config", "", "client config file (env BAKERY_CONFIG; default $XDG_CONFIG_HOME/bakery/config.yaml)")
	pf.DurationVar(&a.timeout, "request-timeout", client.DefaultTimeout, "bound on each request to the server (0: none)")

	root.AddGroup(
		&cobra.Group{ID: "basic", Title: "Working with resources:"},
		&cobra.Group{ID: "server", Title: "Server and configuration:"},
	)
	for _, c := range []*cobra.Command{
		newApplyCmd(a), newDiffCmd(a), newGetCmd(a), newDescribeCmd(a), newDeleteCmd(a), newNodeCmd(a),
		newDeployCmd(a), newRolloutCmd(a), newMaintenanceCmd(a), newLogsCmd(a), newSourceCmd(a), newWebhookCmd(a), newGitHubCmd(a),
		newSecretCmd(a), newExportCmd(a), newTopCmd(a), newExecCmd(a),
	} {
		c.GroupID = "basic"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newServerCmd(a), newAdminCmd(a), newLoginCmd(a), newTokenCmd(a), newVersionCmd(a)} {
		c.GroupID = "server"
		root.AddCommand(c)
	}
	for _, c := range root.Commands() {
		if c.Name() == "server" || c.Name() == "admin" {
			withoutClientFlags(c)
		}
	}
	root.SetHelpCommandGroupID("server")
	root.SetCompletionCommandGroupID("server")
	return root
}

// withoutClientFlags leaves the client's persistent flags (--server,
// --token, --config, --request-timeout) out of the help and usage of cmd
// and its subcommands: they run on the server host and talk to no server.
func withoutClientFlags(cmd *cobra.Command) {
	hide := func(c *cobra.Command) {
		c.InheritedFlags().VisitAll(func(f *pflag.Flag) { f.Hidden = true })
	}
	help, usage := cmd.HelpFunc(), cmd.UsageFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) { hide(c); help(c, args) })
	cmd.SetUsageFunc(func(c *cobra.Command) error { hide(c); return usage(c) })
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	a := &app{in: in, out: out, errOut: errOut}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitError
	if cmd != nil && cmd.Name() == "diff" {
		code = exitDiffError
	}
	if ec, ok := errors.AsType[*exitCodeError](err); ok {
		code = ec.code
		err = ec.err
	}
	if err != nil {
		printError(errOut, err)
		if _, ok := errors.AsType[*usageError](err); ok && cmd != nil {
			fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return code
}

// printError writes err for a human: an API error with one line per
// problem.
func printError(w io.Writer, err error) {
	if es, ok := errors.AsType[manifests.Errors](err); ok {
		fmt.Fprintf(w, "error: %s in the manifests\n", plural(len(es), "problem"))
		for _, e := range es {
			fmt.Fprintf(w, "  - %s\n", e.Error())
		}
		return
	}
	if ae, ok := errors.AsType[*client.APIError](err); ok {
		// The wrapping context, if any, precedes the API error's message.
		prefix := strings.TrimSuffix(err.Error(), ae.Error())
		msg := ae.Message
		if msg == "" {
			msg = fmt.Sprintf("the server answered %d", ae.Code)
		}
		fmt.Fprintf(w, "error: %s%s\n", prefix, msg)
		for _, d := range ae.Details {
			if d.Field != "" {
				fmt.Fprintf(w, "  - %s: %s\n", d.Field, d.Reason)
			} else {
				fmt.Fprintf(w, "  - %s\n", d.Reason)
			}
		}
		return
	}
	fmt.Fprintf(w, "error: %v\n", err)
}

// explain adds advice to the errors users can fix themselves: a rejected
// token, a server that does not answer.
func (a *app) explain(c *client.Client, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case client.IsUnauthorized(err):
		return fmt.Errorf("the server at %s rejected the token; run 'bakery login --server %s --token TOKEN' or set BAKERY_TOKEN: %w",
			c.Server(), c.Server(), err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from the server at %s in time (--request-timeout): %w", c.Server(), err)
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) && errors.As(err, &oe) {
		return fmt.Errorf("cannot reach the Bakery server at %s (is 'bakery server' running?): %w", c.Server(), err)
	}
	return err
}
