package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
)

func newExecCmd(a *app) *cobra.Command {
	var node string
	var interactive, tty bool
	var timeout int
	cmd := &cobra.Command{
		Use:   "exec deployment/NAME [--node N] -- COMMAND [ARG...]",
		Short: "Run a one-off command in a deployment's active release",
		Long: `Run a command once in the deployment's active release on one node (the
first node, by name, whose active slot is healthy; --node picks one), as the
app's own user with the app's environment and secrets and the sandbox of its
unit (systemd), or in a container of the active image (docker). Its output
is streamed as it comes (the app's secret values masked) and its exit status
becomes this command's. One argument is taken as a shell command line;
several are quoted each. The command is stopped after --timeout seconds, and
when this command is interrupted. Each exec is recorded as an event naming
who ran which command (never the environment).`,
		Example: `  bakery exec deployment/hello -- ./manage.py showmigrations
  bakery exec deployment/hello --node web-2 -- 'echo $DATABASE_URL | wc -c'`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			if cmd.ArgsLenAtDash() != 1 {
				return usageErrorf("put the command after --: bakery exec deployment/%s -- COMMAND", name)
			}
			if interactive || tty {
				return usageErrorf("-i/-t (a terminal) is not supported yet: run the command without them")
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			end, err := c.Exec(cmd.Context(), name, api.ExecRequest{Command: args[1:], Node: node, TimeoutSeconds: timeout}, func(l api.ExecLine) {
				if l.Stream == api.StreamStderr {
					fmt.Fprintln(a.errOut, l.Text)
					return
				}
				fmt.Fprintln(a.out, l.Text)
			})
			if err != nil {
				return a.explain(c, err)
			}
			if end.Error != "" {
				return fmt.Errorf("node %s: %s", end.Node, end.Error)
			}
			if end.ExitCode != 0 {
				return &exitCodeError{code: end.ExitCode}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the node to run on (default: the first that serves)")
	cmd.Flags().IntVar(&timeout, "timeout", api.DefaultExecTimeout, "seconds after which the command is stopped (exit status 124)")
	cmd.Flags().BoolVarP(&interactive, "stdin", "i", false, "pass stdin to the command (not supported yet)")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "allocate a terminal (not supported yet)")
	return cmd
}
