package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

// deploymentArg accepts NAME, deployment/NAME or deploy/NAME.
func deploymentArg(arg string) (string, error) {
	if kind, name, ok := strings.Cut(arg, "/"); ok {
		k, err := api.KindFor(kind)
		if err != nil || k != api.KindDeployment {
			return "", usageErrorf("%q does not name a deployment (use deployment/NAME)", arg)
		}
		arg = name
	}
	if r := api.ValidateName(arg); r != "" {
		return "", usageErrorf("deployment name %s", r)
	}
	return arg, nil
}

func newDeployCmd(a *app) *cobra.Command {
	var commitID string
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "deploy NAME",
		Short: "Roll a deployment out now (re-resolve its ref, or a given commit)",
		Long: `Ask the control loop to roll the deployment out now: it resolves the
spec's ref again (a new commit on the branch is picked up at once instead of
at the next resync) and clears a failed attempt, so the same revision is
tried again. With --commit, that commit is rolled out instead of the ref's,
until the spec changes.

With --wait, follow the rollout this request caused (the action's id is
recorded with the rollout that carries it out) until it ends, printing each
node's step; exit 0 when it succeeded or nothing needed rolling out, 1 with
the rollout's message when it failed.`,
		Example: `  bakery deploy hello
  bakery deploy hello --commit 0123456789abcdef0123456789abcdef01234567 --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			action := "deploy"
			if commitID != "" {
				action = "redeploy"
			}
			return a.deploymentAction(cmd, name, action, commitID, 0, wait, timeout)
		},
	}
	cmd.Flags().StringVar(&commitID, "commit", "", "full commit id to roll out instead of the ref's")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the rollout this deploy caused ends; exit 1 if it failed")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")
	return cmd
}

func (a *app) deploymentAction(cmd *cobra.Command, name, action, commitID string, toRevision int64, wait bool, timeout time.Duration) error {
	c, err := a.client(cmd)
	if err != nil {
		return err
	}
	resp, err := c.RequestAction(cmd.Context(), name, api.Action(action), commitID, toRevision)
	if err != nil {
		return a.explain(c, err)
	}
	d := resp.Deployment
	what := map[string]string{"deploy": "deploy requested", "redeploy": "redeploy of " + shortID(commitID) + " requested",
		"restart": "restart requested", "rollback": "rollback requested"}[action]
	if p := d.Status.Pin; action == "rollback" && p != nil {
		what = fmt.Sprintf("rolling back to revision %d (commit %s)", p.Revision, shortID(p.Commit))
	}
	fmt.Fprintf(a.out, "deployment.bakery.dev/%s %s\n", name, what)
	if !wait {
		return nil
	}
	if resp.Request == "" { // a server that gives actions no id
		return a.waitRollout(cmd.Context(), c, name, timeout, d.Status.CurrentRollout)
	}
	return a.waitRequest(cmd.Context(), c, name, action, resp.Request, timeout)
}

// waitRequest follows the deployment until the action request id is
// carried out — the rollout that records it as its Request ended, or the
// status's lastRequest names it (also when no rollout was needed) — and
// reports how: 0 when it succeeded, an error with the rollout's message
// when it failed. It prints each change of state and each node's step.
// A rollout of the request that was superseded is followed by the next
// one carrying it, as long as the request stands.
func (a *app) waitRequest(ctx context.Context, c *client.Client, name, action, id string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := map[string]string{}
	show := func(key, line string) {
		if last[key] != line {
			fmt.Fprintln(a.out, line)
			last[key] = line
		}
	}
	for {
		o, err := c.Get(ctx, api.KindDeployment, name)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("deployment %s: the %s (request %s) was not carried out within %s", name, action, id, timeout)
			}
			return a.explain(c, err)
		}
		d := o.(*api.Deployment)
		s := d.Status
		show("", progressLine(d))
		if lr := s.LastRequest; lr != nil && lr.ID == id {
			return a.requestEnded(name, action, lr)
		}
		var ro *api.Rollout
		if s.CurrentRollout != nil {
			ro, _ = c.Rollout(ctx, s.CurrentRollout.ID)
		}
		switch {
		case ro != nil && ro.Request == id:
			for _, l := range progress(d, ro, time.Now()) {
				show(l[:strings.Index(l, ":")], l)
			}
			if ro.Done() && ro.State != api.RolloutSuperseded {
				return a.requestEnded(name, action, &api.RequestOutcome{ID: id, Rollout: ro.ID, State: ro.State, Message: ro.Message, Revision: ro.Revision, Commit: ro.Commit})
			}
		case !requestPending(d, id):
			// Carried out, and the status names a later request by now;
			// or replaced before it was carried out.
			ros, err := c.Rollouts(ctx, name, 20)
			if err != nil {
				return a.explain(c, err)
			}
			for _, r := range ros {
				if r.Request == id && r.Done() && r.State != api.RolloutSuperseded {
					return a.requestEnded(name, action, &api.RequestOutcome{ID: id, Rollout: r.ID, State: r.State, Message: r.Message, Revision: r.Revision, Commit: r.Commit})
				}
			}
			return fmt.Errorf("deployment %s: the %s (request %s) was superseded by a newer spec or action before it was carried out", name, action, id)
		case api.IsTrue(s.Conditions, api.ConditionStalled):
			return fmt.Errorf("deployment %s is stalled: %s", name, conditionMessage(s.Conditions, api.ConditionStalled))
		case d.Spec.Suspend:
			return fmt.Errorf("deployment %s is suspended: the %s waits until spec.suspend is false", name, action)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s: the %s (request %s) was not carried out within %s", name, action, id, timeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// requestPending reports whether the deployment's status still holds the
// action request id as not carried out.
func requestPending(d *api.Deployment, id string) bool {
	s := d.Status
	if s.LastRequest != nil && s.LastRequest.ID == id {
		return false
	}
	switch {
	case s.DeployRequest != nil && s.DeployRequest.ID == id:
		return true
	case s.Restart == id && s.RestartDone != id:
		return true
	case s.Pin != nil && s.Pin.ID == id && s.Pin.Generation == d.Metadata.Generation:
		return true
	}
	return false
}

// requestEnded reports how an action request was carried out.
func (a *app) requestEnded(name, action string, out *api.RequestOutcome) error {
	switch out.State {
	case api.RequestConverged:
		fmt.Fprintf(a.out, "deployment.bakery.dev/%s %s done: %s\n", name, action, out.Message)
		return nil
	case api.RolloutSucceeded:
		fmt.Fprintf(a.out, "deployment.bakery.dev/%s %s done: rollout %s succeeded: revision %d, commit %s\n", name, action, out.Rollout, out.Revision, shortID(out.Commit))
		return nil
	}
	msg := out.Message
	if msg == "" {
		msg = "no reason recorded"
	}
	return fmt.Errorf("deployment %s: the %s's rollout %s %s: %s (see bakery logs deployment/%s --rollout %s)", name, action, out.Rollout, out.State, msg, name, out.Rollout)
}

func shortID(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// waitRollout polls the deployment until a rollout newer than prev ended
// and the status describes the current spec, printing each change of state.
func (a *app) waitRollout(ctx context.Context, c *client.Client, name string, timeout time.Duration, prev *api.RolloutRef) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		o, err := c.Get(ctx, api.KindDeployment, name)
		if err != nil {
			return a.explain(c, err)
		}
		d := o.(*api.Deployment)
		s := d.Status
		msg := progressLine(d)
		if msg != last {
			fmt.Fprintln(a.out, msg)
			last = msg
		}
		started := s.CurrentRollout != nil && (prev == nil || s.CurrentRollout.ID != prev.ID)
		current := s.ObservedGeneration == d.Metadata.Generation && (s.Restart == s.RestartDone)
		progressing := api.IsTrue(s.Conditions, api.ConditionProgressing)
		if current && !progressing && (started || prev == nil || api.IsTrue(s.Conditions, api.ConditionReady)) {
			if s.CurrentRollout != nil && s.CurrentRollout.State == api.RolloutFailed || api.IsTrue(s.Conditions, api.ConditionDegraded) {
				return fmt.Errorf("rollout of deployment %s failed: %s", name, conditionMessage(s.Conditions, api.ConditionDegraded))
			}
			if api.IsTrue(s.Conditions, api.ConditionReady) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s: still not rolled out after %s", name, timeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func conditionMessage(conds []api.Condition, t string) string {
	if c := api.FindCondition(conds, t); c != nil {
		if c.Message != "" {
			return c.Message
		}
		return c.Reason
	}
	return ""
}

func progressLine(d *api.Deployment) string {
	s := d.Status
	ro := "no rollout yet"
	if r := s.CurrentRollout; r != nil {
		ro = fmt.Sprintf("rollout %s %s", r.ID, r.State)
	}
	ready := "Unknown"
	if c := api.FindCondition(s.Conditions, api.ConditionReady); c != nil {
		ready = string(c.Status)
	}
	return fmt.Sprintf("deployment %s: revision %d, commit %s, %s, ready %s", d.Metadata.Name, s.Revision, orDash(shortID(s.Commit)), ro, ready)
}

func newRolloutCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Manage rollouts: status, history, undo, restart",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var timeout time.Duration
	status := &cobra.Command{
		Use:   "status deployment/NAME",
		Short: "Wait for the current rollout to finish and report how it ended",
		Long: `Follow the deployment's rollout until the status describes the current spec
and no rollout is in progress. Exits 0 when the deployment is Ready, 1 when
the rollout failed (the previous revision keeps serving) or --timeout passed.`,
		Example: `  bakery rollout status deployment/hello`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			return a.waitRollout(cmd.Context(), c, name, timeout, nil)
		},
	}
	status.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long to wait")

	var limit int
	history := &cobra.Command{
		Use:     "history deployment/NAME",
		Short:   "List a deployment's rollouts, newest first",
		Example: `  bakery rollout history deployment/hello`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ros, err := c.Rollouts(cmd.Context(), name, limit)
			if err != nil {
				return a.explain(c, err)
			}
			// SERVER: which control plane ran it, when the records say
			// (rollouts of older versions do not).
			servers := false
			for _, r := range ros {
				servers = servers || r.Server != ""
			}
			w := newTabWriter(a.out)
			if servers {
				fmt.Fprintln(w, "REVISION\tROLLOUT\tTRIGGER\tCOMMIT\tSTATE\tAGE\tSERVER\tMESSAGE")
			} else {
				fmt.Fprintln(w, "REVISION\tROLLOUT\tTRIGGER\tCOMMIT\tSTATE\tAGE\tMESSAGE")
			}
			now := time.Now()
			for _, r := range ros {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t", r.Revision, r.ID, r.Trigger, shortID(r.Commit), r.State, age(r.CreatedAt, now))
				if servers {
					fmt.Fprintf(w, "%s\t", orDash(printable(r.Server)))
				}
				fmt.Fprintf(w, "%s\n", r.Message)
			}
			return w.Flush()
		},
	}
	history.Flags().IntVar(&limit, "limit", 20, "how many rollouts to list (0: all)")

	var toRevision int64
	var wait bool
	undo := &cobra.Command{
		Use:   "undo deployment/NAME",
		Short: "Roll back to the previous revision (or --to-revision N)",
		Long: `Roll the deployment back to the previous succeeded revision, or to
revision N. When the idle slot still holds that release, traffic switches
back without a rebuild. The rolled-back-from commit is not deployed again on
its own until the spec changes (or 'bakery deploy' is run).`,
		Example: `  bakery rollout undo deployment/hello
  bakery rollout undo deployment/hello --to-revision 3 --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			return a.deploymentAction(cmd, name, "rollback", "", toRevision, wait, timeout)
		},
	}
	undo.Flags().Int64Var(&toRevision, "to-revision", 0, "revision to roll back to (0: the previous one)")
	undo.Flags().BoolVar(&wait, "wait", false, "wait until the rollout this rollback caused ends (every node serves the revision); exit 1 if it failed")
	undo.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")

	restart := &cobra.Command{
		Use:     "restart deployment/NAME",
		Short:   "Restart with no downtime: start the same revision in the other slot and switch",
		Example: `  bakery rollout restart deployment/hello --wait`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			return a.deploymentAction(cmd, name, "restart", "", 0, wait, timeout)
		},
	}
	restart.Flags().BoolVar(&wait, "wait", false, "wait until the rollout this restart caused ends; exit 1 if it failed")
	restart.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")
	cmd.AddCommand(status, history, undo, restart)
	return cmd
}

func newLogsCmd(a *app) *cobra.Command {
	var rolloutID, node, colorMode string
	var follow, runtime bool
	var lines int
	cmd := &cobra.Command{
		Use:   "logs deployment/NAME",
		Short: "Print a rollout's log (the current one by default)",
		Long: `Print the stored log of a deployment's rollout: every line its nodes
printed, in order, as "NODE STREAM TEXT". With -f, follow the log as the
rollout writes it (a dropped connection is resumed without losing or
repeating lines) until the rollout ends; exit 1 if it failed.

With --runtime, print the running app's own log instead: the journal of
its active slot on each node (or --node N), read over SSH, the last --lines
lines, as "NODE SLOT TEXT"; -f keeps following until interrupted (the
remote journalctl stops with the command).`,
		Example: `  bakery logs deployment/hello
  bakery logs deployment/hello -f
  bakery logs deployment/hello --rollout hello-3-1a2b3c4d
  bakery logs deployment/hello --runtime --node web-1 -f`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			col, err := newColorizer(a.out, colorMode)
			if err != nil {
				return err
			}
			if runtime {
				if rolloutID != "" {
					return usageErrorf("--runtime and --rollout do not go together")
				}
				err := c.RuntimeLogs(ctx, name, node, lines, follow, func(l api.RuntimeLogLine) {
					fmt.Fprintf(a.out, "%s %s %s\n", col.node(l.Node), l.Slot, l.Text)
				})
				if err != nil {
					return a.explain(c, err)
				}
				return nil
			}
			if node != "" {
				return usageErrorf("--node goes with --runtime")
			}
			id := rolloutID
			if id == "" {
				o, err := c.Get(ctx, api.KindDeployment, name)
				if err != nil {
					return a.explain(c, err)
				}
				d := o.(*api.Deployment)
				if d.Status.CurrentRollout == nil {
					return fmt.Errorf("deployment %s has no rollout yet", name)
				}
				id = d.Status.CurrentRollout.ID
			}
			printLine := func(l api.LogLine) {
				fmt.Fprintf(a.out, "%s %s %s\n", col.node(orDash(l.Node)), col.stream(l.Stream), l.Text)
			}
			if follow {
				end, err := c.StreamLogs(ctx, id, 0, printLine)
				if err != nil {
					return a.explain(c, err)
				}
				if end.State == api.RolloutFailed {
					msg := ""
					if end.Message != "" {
						msg = ": " + end.Message
					}
					return fmt.Errorf("rollout %s failed%s", id, msg)
				}
				return nil
			}
			var after int64
			for {
				lines, err := c.Logs(ctx, id, after, 1000)
				if err != nil {
					return a.explain(c, err)
				}
				for _, l := range lines {
					printLine(l)
					after = l.Seq
				}
				if len(lines) < 1000 {
					return nil
				}
			}
		},
	}
	cmd.Flags().StringVar(&rolloutID, "rollout", "", "rollout id (default: the deployment's current rollout)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until the rollout ends (with --runtime: until interrupted)")
	cmd.Flags().BoolVar(&runtime, "runtime", false, "the running app's own log (its active slot's journal on each node) instead of a rollout's")
	cmd.Flags().StringVar(&node, "node", "", "with --runtime: only this node")
	cmd.Flags().StringVar(&colorMode, "color", "auto", "color per node and stream: auto (on a terminal, unless NO_COLOR is set), always or never")
	cmd.Flags().IntVar(&lines, "lines", 100, "with --runtime: how many past lines to print first")
	return cmd
}
