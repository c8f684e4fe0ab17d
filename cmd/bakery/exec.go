package main

import (
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
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
who ran which command (never the environment).

With -it the command runs on a terminal (a pty over the node's SSH
connection): what you type reaches it, its output is shown unmasked (it is
your own session), and the window size follows yours.`,
		Example: `  bakery exec deployment/hello -- ./manage.py showmigrations
  bakery exec deployment/hello --node web-2 -- 'echo $DATABASE_URL | wc -c'
  bakery exec -it deployment/hello -- sh`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			if cmd.ArgsLenAtDash() != 1 {
				return usageErrorf("put the command after --: bakery exec deployment/%s -- COMMAND", name)
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			if interactive || tty {
				return a.execTerminal(cmd, c, name, api.ExecRequest{Command: args[1:], Node: node, TimeoutSeconds: timeout})
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
	cmd.Flags().BoolVarP(&interactive, "stdin", "i", false, "pass stdin to the command (with -t: an interactive terminal)")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "run the command on a terminal over the node's SSH connection (-it)")
	return cmd
}

// execTerminal runs the exec on a terminal: the local terminal in raw mode
// (restored at the end), its size sent at the start and on each change.
func (a *app) execTerminal(cmd *cobra.Command, c *client.Client, name string, req api.ExecRequest) error {
	in, ok := a.in.(*os.File)
	if !ok || !isTerminal(in) {
		return usageErrorf("-it needs a terminal on stdin")
	}
	fd := int(in.Fd())
	req.Rows, req.Cols = terminalSize(fd)
	restore, err := makeRaw(fd)
	if err != nil {
		return err
	}
	resize := make(chan [2]int, 1)
	var winch chan os.Signal
	if winchSignal != nil {
		winch = make(chan os.Signal, 1)
		signal.Notify(winch, winchSignal)
		go func() {
			for range winch {
				rows, cols := terminalSize(fd)
				select {
				case resize <- [2]int{rows, cols}:
				default:
				}
			}
		}()
	}
	end, err := c.ExecTerminal(cmd.Context(), name, req, in, a.out, resize)
	if winch != nil {
		signal.Stop(winch)
		close(winch)
	}
	restore()
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
}
