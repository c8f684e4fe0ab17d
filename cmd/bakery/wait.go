package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

// waitApplied follows every deployment of an apply until its status
// describes the applied generation and no rollout is in progress,
// printing each node's current step (with its elapsed time) as it changes.
// It returns an error naming every deployment whose rollout failed.
func waitApplied(ctx context.Context, w io.Writer, c *client.Client, gens map[string]int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	names := make([]string, 0, len(gens))
	for n := range gens {
		names = append(names, n)
	}
	sort.Strings(names)
	pending := map[string]bool{}
	for _, n := range names {
		pending[n] = true
	}
	last := map[string]string{}
	var failed []string
	for len(pending) > 0 {
		for _, name := range names {
			if !pending[name] {
				continue
			}
			o, err := c.Get(ctx, api.KindDeployment, name)
			if err != nil {
				if client.IsNotFound(err) {
					delete(pending, name)
					continue
				}
				if ctx.Err() != nil {
					break
				}
				return err
			}
			d := o.(*api.Deployment)
			s := d.Status
			var ro *api.Rollout
			if s.CurrentRollout != nil {
				ro, _ = c.Rollout(ctx, s.CurrentRollout.ID)
			}
			for _, line := range progress(d, ro, time.Now()) {
				key := name + "\x00" + line[:strings.Index(line, ":")]
				if last[key] != line {
					fmt.Fprintln(w, line)
					last[key] = line
				}
			}
			// The status describes the applied generation (or a later
			// one) once a reconcile of it ended: its rollout ended, or the
			// nodes were found running it.
			current := s.ObservedGeneration >= gens[name] && !api.IsTrue(s.Conditions, api.ConditionProgressing)
			if !current || (ro != nil && !ro.Done()) {
				continue
			}
			delete(pending, name)
			switch {
			case s.FailedAttempt != nil || api.IsTrue(s.Conditions, api.ConditionStalled):
				msg := conditionMessage(s.Conditions, api.ConditionDegraded)
				if api.IsTrue(s.Conditions, api.ConditionStalled) {
					msg = conditionMessage(s.Conditions, api.ConditionStalled)
				} else if ro != nil && ro.Generation >= gens[name] && ro.State == api.RolloutFailed && ro.Message != "" {
					msg = fmt.Sprintf("rollout %s: %s", ro.ID, ro.Message)
				}
				fmt.Fprintf(w, "deployment.bakery.dev/%s failed: %s\n", name, msg)
				failed = append(failed, name)
			case api.IsTrue(s.Conditions, api.ConditionReady):
				fmt.Fprintf(w, "deployment.bakery.dev/%s rolled out: revision %d, commit %s\n", name, s.Revision, shortID(s.Commit))
			default:
				fmt.Fprintf(w, "deployment.bakery.dev/%s not ready: %s\n", name, conditionMessage(s.Conditions, api.ConditionReady))
				failed = append(failed, name)
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			var left []string
			for n := range pending {
				left = append(left, n)
			}
			sort.Strings(left)
			return fmt.Errorf("still rolling out after %s: %s", timeout, strings.Join(left, ", "))
		case <-time.After(300 * time.Millisecond):
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("rollout failed: %s (see bakery logs deployment/NAME)", strings.Join(failed, ", "))
	}
	return nil
}

// progress renders one line per node of a rollout in progress:
// "hello node1: health blue (3s)".
func progress(d *api.Deployment, ro *api.Rollout, now time.Time) []string {
	if ro == nil || ro.Done() {
		return nil
	}
	var out []string
	for _, n := range ro.Nodes {
		step := n.State
		if k := len(n.Steps); k > 0 {
			st := n.Steps[k-1]
			step = st.Name
			if st.End == nil && st.Start != nil {
				step += fmt.Sprintf(" (%s)", now.Sub(st.Start.Time).Truncate(time.Second))
			} else if st.Result != "" {
				step += " " + st.Result
			}
		}
		out = append(out, fmt.Sprintf("%s %s: %s", d.Metadata.Name, n.Node, step))
	}
	return out
}
