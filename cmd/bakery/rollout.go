package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

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
	var wait, rerunRelease bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "deploy NAME",
		Short: "Roll a deployment out now (re-resolve its ref, or a given commit)",
		Long: `Ask the control loop to roll the deployment out now: it resolves the
spec's ref again (a new commit on the branch is picked up at once instead of
at the next resync) and clears a failed attempt, so the same revision is
tried again. With --commit, that commit is rolled out instead of the ref's,
until the spec changes. spec.release does not run again for a commit it ran
for (with the same command) unless --rerun-release asks for it.

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
				if rerunRelease {
					return usageErrorf("--rerun-release goes without --commit")
				}
			}
			return a.deploymentAction(cmd, name, action, api.ActionOptions{Commit: commitID, RerunRelease: rerunRelease}, wait, timeout)
		},
	}
	cmd.Flags().StringVar(&commitID, "commit", "", "full commit id to roll out instead of the ref's")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the rollout this deploy caused ends; exit 1 if it failed")
	cmd.Flags().BoolVar(&rerunRelease, "rerun-release", false, "run spec.release again even if it ran for this commit before")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")
	return cmd
}

func (a *app) deploymentAction(cmd *cobra.Command, name, action string, opts api.ActionOptions, wait bool, timeout time.Duration) error {
	commitID := opts.Commit
	c, err := a.client(cmd)
	if err != nil {
		return err
	}
	resp, err := c.RequestActionWith(cmd.Context(), name, api.Action(action), opts)
	if err != nil {
		return a.explain(c, err)
	}
	d := resp.Deployment
	what := map[string]string{"deploy": "deploy requested", "redeploy": "redeploy of " + shortID(commitID) + " requested",
		"restart": "restart requested", "rollback": "rollback requested", "resume": "resumed: following " + followedRef(d) + " again"}[action]
	if p := d.Status.Pin; action == "rollback" && p != nil {
		what = rollbackLine(d, p)
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

// rollbackLine says what a rollback restored: the revision's spec (as
// generation N) and commit, or only its commit when the revision has no
// recorded spec; and how the pin it leaves is cleared.
func rollbackLine(d *api.Deployment, p *api.CommitPin) string {
	line := fmt.Sprintf("rolling back to revision %d (commit %s)", p.Revision, shortID(p.Commit))
	if p.SpecRestored {
		line += fmt.Sprintf(": its spec is restored as generation %d", p.Generation)
	} else {
		line += fmt.Sprintf(": commit only, revision %d has no recorded spec (rolled out by an older Bakery), the current spec stays", p.Revision)
	}
	return line + fmt.Sprintf("\nnew commits on %s are not rolled out until 'bakery rollout resume deployment/%s' (or 'bakery deploy %s')",
		followedRef(d), d.Metadata.Name, d.Metadata.Name)
}

// followedRef names what the deployment's spec follows.
func followedRef(d *api.Deployment) string {
	if c := d.Spec.Source.Commit; c != "" {
		return "commit " + shortID(c)
	}
	if d.Spec.Source.Ref == "" {
		return api.DefaultRef
	}
	return d.Spec.Source.Ref
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
		Short: "Manage rollouts: status, history, undo, restart, resume",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newRolloutStatusCmd(a), newRolloutHistoryCmd(a), newRolloutUndoCmd(a), newRolloutRestartCmd(a), newRolloutResumeCmd(a))
	return cmd
}

func newRolloutStatusCmd(a *app) *cobra.Command {
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

	return status
}

func newRolloutHistoryCmd(a *app) *cobra.Command {
	var limit int
	var showRevision int64
	var histOutput string
	history := &cobra.Command{
		Use:   "history deployment/NAME",
		Short: "List a deployment's rollouts, newest first (or show one revision)",
		Long: `List a deployment's rollouts, newest first. Every revision listed with a
succeeded rollout can be rolled back to ('rollout undo --to-revision N'):
retention keeps the newest succeeded rollout of the last --keep-rollouts
revisions that succeeded, however many rollouts came after them.

With --revision N, show that revision's rollout (its newest succeeded one,
else its newest) with the spec it rolled out — what 'rollout undo
--to-revision N' restores; -o yaml or -o json prints the whole record.`,
		Example: `  bakery rollout history deployment/hello
  bakery rollout history deployment/hello --revision 3 -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			if histOutput != "" && showRevision == 0 {
				return usageErrorf("-o goes with --revision")
			}
			if histOutput != "" && histOutput != "yaml" && histOutput != "json" {
				return usageErrorf("--output must be yaml or json, not %q", histOutput)
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			if showRevision != 0 {
				return a.showRevision(cmd.Context(), c, name, showRevision, histOutput)
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
	history.Flags().Int64Var(&showRevision, "revision", 0, "show this revision's rollout and the spec it rolled out")
	history.Flags().StringVarP(&histOutput, "output", "o", "", "with --revision: yaml or json (the whole rollout record)")

	return history
}

func newRolloutUndoCmd(a *app) *cobra.Command {
	var timeout time.Duration
	var toRevision int64
	var wait bool
	undo := &cobra.Command{
		Use:   "undo deployment/NAME",
		Short: "Roll back to the previous revision (or --to-revision N)",
		Long: `Roll the deployment back to the previous succeeded revision, or to
revision N (see 'rollout history'), as kubectl rollout undo does: the
revision's spec as it was rolled out — source, build, runtime, run command,
port, env names and values, secret references, health check, ingress — is
written as a new generation of the deployment (nodes, node selector,
strategy, keepReleases, progressDeadline and suspend stay as they are), and
its commit is pinned at that generation. While a failed attempt stands,
the previous revision is the one still serving: undo takes back the change
that failed. A revision rolled out before Bakery recorded specs gets only
its commit back (the output says so). When the idle slot still holds that
release, traffic switches back without a rebuild.

The pin holds the deployment at that commit: new commits on the branch are
not rolled out (each is recorded once as event PushIgnored; condition
Pinned and column PINNED of 'get deployments' say so) until 'bakery rollout
resume' (or 'bakery deploy') clears it, or a new spec is applied.`,
		Example: `  bakery rollout undo deployment/hello
  bakery rollout undo deployment/hello --to-revision 3 --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			return a.deploymentAction(cmd, name, "rollback", api.ActionOptions{ToRevision: toRevision}, wait, timeout)
		},
	}
	undo.Flags().Int64Var(&toRevision, "to-revision", 0, "revision to roll back to (0: the previous one)")
	undo.Flags().BoolVar(&wait, "wait", false, "wait until the rollout this rollback caused ends (every node serves the revision); exit 1 if it failed")
	undo.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")

	return undo
}

func newRolloutRestartCmd(a *app) *cobra.Command {
	var wait bool
	var timeout time.Duration
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
			return a.deploymentAction(cmd, name, "restart", api.ActionOptions{}, wait, timeout)
		},
	}
	restart.Flags().BoolVar(&wait, "wait", false, "wait until the rollout this restart caused ends; exit 1 if it failed")
	restart.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")
	return restart
}

func newRolloutResumeCmd(a *app) *cobra.Command {
	var resumeWait bool
	var resumeTimeout time.Duration
	resume := &cobra.Command{
		Use:   "resume deployment/NAME",
		Short: "Follow the branch again after a rollback: clear the pin, roll out the ref's commit",
		Long: `Clear the pin a rollback (or 'deploy --commit') left: the deployment follows
its spec's ref again, and the ref's commit rolls out now (with the spec as
it is, the restored one after an undo). Fails when no pin holds.`,
		Example: `  bakery rollout resume deployment/hello --wait`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[0])
			if err != nil {
				return err
			}
			return a.deploymentAction(cmd, name, "resume", api.ActionOptions{}, resumeWait, resumeTimeout)
		},
	}
	resume.Flags().BoolVar(&resumeWait, "wait", false, "wait until the rollout finishes")
	resume.Flags().DurationVar(&resumeTimeout, "timeout", 15*time.Minute, "how long --wait waits")
	return resume
}

// showRevision prints revision rev of deployment name: its newest
// succeeded rollout (else its newest) with the spec it rolled out.
func (a *app) showRevision(ctx context.Context, c *client.Client, name string, rev int64, output string) error {
	ros, err := c.Rollouts(ctx, name, 0)
	if err != nil {
		return a.explain(c, err)
	}
	var pick *api.Rollout
	for _, r := range ros {
		if r.Revision == rev && (pick == nil || pick.State != api.RolloutSucceeded && r.State == api.RolloutSucceeded) {
			pick = r
		}
	}
	if pick == nil {
		return fmt.Errorf("deployment %s has no rollout of revision %d (see 'bakery rollout history deployment/%s')", name, rev, name)
	}
	ro, err := c.Rollout(ctx, pick.ID)
	if err != nil {
		return a.explain(c, err)
	}
	switch output {
	case "json":
		b, err := json.MarshalIndent(ro, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.out, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(ro)
		if err != nil {
			return err
		}
		_, err = a.out.Write(b)
		return err
	}
	fmt.Fprintf(a.out, "deployment.bakery.dev/%s with revision #%d\n", name, rev)
	fmt.Fprintf(a.out, "Rollout:     %s (%s, %s)\nCommit:      %s\nGeneration:  %d\n", ro.ID, ro.Trigger, ro.State, ro.Commit, ro.Generation)
	if ro.Spec == nil {
		fmt.Fprintln(a.out, "Spec:        <not recorded: rolled out by an older Bakery; an undo to it restores only the commit>")
		return nil
	}
	b, err := yaml.Marshal(ro.Spec)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.out, "Spec:")
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		fmt.Fprintf(a.out, "  %s\n", l)
	}
	return nil
}

func newLogsCmd(a *app) *cobra.Command {
	var rolloutID, node, process, colorMode string
	var follow, runtime bool
	var schedule string
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
remote journalctl stops with the command). --process NAME prints the log
of that process (spec.processes) instead of the web process's,
--schedule NAME the output of that schedule's runs (spec.schedules).`,
		Example: `  bakery logs deployment/hello
  bakery logs deployment/hello -f
  bakery logs deployment/hello --rollout hello-3-1a2b3c4d
  bakery logs deployment/hello --runtime --node web-1 -f
  bakery logs deployment/hello --runtime --process worker
  bakery logs deployment/hello --runtime --schedule nightly`,
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
				if process != "" && schedule != "" {
					return usageErrorf("--process and --schedule do not go together")
				}
				req := api.RuntimeLogRequest{Node: node, Lines: lines, Follow: follow, Process: process, Schedule: schedule}
				err := c.RuntimeLogs(ctx, name, req, func(l api.RuntimeLogLine) {
					fmt.Fprintf(a.out, "%s %s %s\n", col.node(l.Node), l.Slot, l.Text)
				})
				if err != nil {
					return a.explain(c, err)
				}
				return nil
			}
			if node != "" || process != "" {
				return usageErrorf("--node and --process go with --runtime")
			}
			if schedule != "" {
				return usageErrorf("--schedule goes with --runtime")
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
	cmd.Flags().StringVar(&process, "process", "", "with --runtime: the log of this process (spec.processes) instead of the web process's")
	cmd.Flags().StringVar(&schedule, "schedule", "", "with --runtime: the output of this schedule's runs (its service's journal) instead of the web process's")
	cmd.Flags().StringVar(&colorMode, "color", "auto", "color per node and stream: auto (on a terminal, unless NO_COLOR is set), always or never")
	cmd.Flags().IntVar(&lines, "lines", 100, "with --runtime: how many past lines to print first")
	return cmd
}
