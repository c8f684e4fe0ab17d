package deployment

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
)

// SchedSpec is one schedule as a node runs it: the spec's schedule with
// its calendar converted (api.OnCalendar) and defaults applied.
type SchedSpec struct {
	Name, Calendar, Command, Concurrency string
	TimeoutSec                           int
	Docker                               bool
	// Limits are the app's resource limits and (runtime systemd)
	// persistent directories.
	Limits nf.Limits
}

// sched returns the parameters of s's timer and service in a slot's
// release.
func (s SchedSpec) sched(app, slot, release string) nf.Sched {
	return nf.Sched{App: app, Name: s.Name, Slot: slot, Release: release, TimeoutSec: s.TimeoutSec,
		Concurrency: s.Concurrency, Docker: s.Docker, Calendar: s.Calendar, Limits: s.Limits}
}

func (s SchedSpec) script() string { return nf.SchedScript(s.Name, s.Command) }

// chooseSchedNode marks the node that runs the schedules with node: one:
// the first target in name order (targets are sorted) whose Node is
// Ready, or the first target when none is. Removed targets never run
// one. When the chosen node goes away (not Ready, or no longer a target),
// the next one takes the schedules over at the next reconcile.
func chooseSchedNode(targets []target) {
	first := -1
	for i, t := range targets {
		if t.remove {
			continue
		}
		if first < 0 {
			first = i
		}
		if api.IsTrue(t.node.Status.Conditions, api.ConditionReady) {
			targets[i].schedOne = true
			return
		}
	}
	if first >= 0 {
		targets[first].schedOne = true
	}
}

// nodeSchedules returns the schedules target t runs.
func nodeSchedules(s *api.DeploymentSpec, t target) []SchedSpec {
	if t.remove {
		return nil
	}
	var out []SchedSpec
	for _, sc := range s.Schedules {
		if sc.Node == api.ScheduleNodeOne && !t.schedOne {
			continue
		}
		cal, err := api.OnCalendar(sc.Schedule)
		if err != nil {
			continue // refused by validation before any reconcile gets here
		}
		timeout := api.DefaultScheduleTimeout
		if sc.Timeout != nil {
			timeout = sc.Timeout.Duration
		}
		out = append(out, SchedSpec{Name: sc.Name, Calendar: cal, Command: sc.Command, Concurrency: sc.Concurrency,
			TimeoutSec: int(timeout / time.Second), Docker: isDocker(s), Limits: schedLimits(s)})
	}
	return out
}

// schedActions returns the steps that make the node's schedules those of
// d, running in slot's release: install the ones missing or different
// (their timer, service and script hash, nodefiles.SchedHash, differs from
// what the node has: a deleted timer file, another release after a
// switch, a changed spec), remove the ones the node should not run.
func schedActions(d Desired, obs nodescript.Observed, slot, release string) []Action {
	var plan []Action
	want := map[string]bool{}
	for _, s := range d.Schedules {
		want[s.Name] = true
		got, ok := obs.Schedules[s.Name]
		if ok && got.Hash == nf.SchedHash(s.sched(d.App, slot, release), s.script()) {
			continue
		}
		reason := "timer differs from the generated one"
		if !ok {
			reason = "timer missing"
		}
		plan = append(plan, Action{Type: ActSchedule, Schedule: s.Name, Slot: slot, Release: release, Reason: reason})
	}
	var extra []string
	for name := range obs.Schedules {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		plan = append(plan, Action{Type: ActUnschedule, Schedule: name, Reason: "not a schedule of this node"})
	}
	return plan
}

// schedule installs one schedule's timer, service and script.
func (n *nodeRun) schedule(ctx context.Context, a Action) error {
	for _, s := range n.desired.Schedules {
		if s.Name != a.Schedule {
			continue
		}
		sc := s.sched(n.app, a.Slot, a.Release)
		if _, err := run(ctx, n, nodescript.SchedInstall, nodescript.SchedInstallInput{Sched: sc, Script: s.script()}); err != nil {
			return fmt.Errorf("schedule %s: %w", s.Name, err)
		}
		if n.obs.Schedules == nil {
			n.obs.Schedules = map[string]nodescript.SchedObservation{}
		}
		o := n.obs.Schedules[s.Name]
		o.Hash = nf.SchedHash(sc, s.script())
		if o.TimerState == "" {
			o.TimerState = "active"
		}
		n.obs.Schedules[s.Name] = o
		return nil
	}
	return fmt.Errorf("schedule %s is not in the spec", a.Schedule)
}

// unschedule removes one schedule ("": every one of the app's).
func (n *nodeRun) unschedule(ctx context.Context, name string) error {
	if _, err := run(ctx, n, nodescript.SchedRemove, nodescript.SchedRemoveInput{App: n.app, Name: name}); err != nil {
		return fmt.Errorf("remove schedule %s: %w", name, err)
	}
	if name == "" {
		n.obs.Schedules = nil
	} else {
		delete(n.obs.Schedules, name)
	}
	return nil
}

// schedFailure is a failed run seen for the first time (event
// ScheduleFailed).
type schedFailure struct {
	name, node, result string
	at                 time.Time
}

// scheduleStatus computes status.schedules from what the nodes reported
// (p.runs' observations, updated by the steps that ran) and returns the
// failed runs not in prev (so each raises its event once). A node that
// could not be observed keeps nothing: its schedules show what the
// others report.
func scheduleStatus(spec []api.Schedule, prev []api.ScheduleStatus, p *rolloutPlan) ([]api.ScheduleStatus, []schedFailure) {
	if len(spec) == 0 {
		return nil, nil
	}
	old := map[string]api.ScheduleStatus{}
	for _, s := range prev {
		old[s.Name] = s
	}
	var out []api.ScheduleStatus
	var failed []schedFailure
	for _, sc := range spec {
		st := api.ScheduleStatus{Name: sc.Name}
		st.Calendar, _ = api.OnCalendar(sc.Schedule)
		var last nodescript.SchedObservation
		for i, t := range p.targets {
			n := p.runs[i]
			if t.remove || n == nil {
				continue
			}
			o, ok := n.obs.Schedules[sc.Name]
			if !ok {
				continue
			}
			st.Nodes = append(st.Nodes, t.node.Metadata.Name)
			if !o.NextRun.IsZero() && (st.NextRun == nil || o.NextRun.Before(st.NextRun.Time)) {
				st.NextRun = &api.Time{Time: o.NextRun}
			}
			if !o.LastStart.IsZero() && (st.LastRun == nil || o.LastStart.After(st.LastRun.Time)) {
				st.LastRun = &api.Time{Time: o.LastStart}
				st.Node = t.node.Metadata.Name
				last = o
			}
		}
		if st.LastRun == nil {
			// Not observed this time (unreachable nodes): keep the last
			// known run.
			if o, ok := old[sc.Name]; ok && len(st.Nodes) == 0 {
				st.LastRun, st.Node, st.Result, st.Duration = o.LastRun, o.Node, o.Result, o.Duration
			}
			out = append(out, st)
			continue
		}
		st.Result = runResult(sc, last)
		if last.Duration > 0 {
			st.Duration = &api.Duration{Duration: last.Duration}
		}
		if strings.HasPrefix(st.Result, "failed") {
			o, seen := old[sc.Name]
			if !seen || o.LastRun == nil || !o.LastRun.Time.Equal(st.LastRun.Time) || o.Node != st.Node || !strings.HasPrefix(o.Result, "failed") {
				failed = append(failed, schedFailure{name: sc.Name, node: st.Node, result: st.Result, at: st.LastRun.Time})
			}
		}
		out = append(out, st)
	}
	return out, failed
}

// runResult says how the last run observed went: running, succeeded,
// failed (with systemd's result and the exit status), or for concurrency
// Allow started (the run goes on in the background: its own result is
// in the logs only).
func runResult(sc api.Schedule, o nodescript.SchedObservation) string {
	switch {
	case o.ServiceState == "activating" || o.ServiceState == "deactivating":
		return "running"
	case sc.Concurrency == api.ConcurrencyAllow && o.Result == "success":
		return "started"
	case o.Result == "success":
		return "succeeded"
	case o.Result == "exit-code":
		return fmt.Sprintf("failed: exit status %d", o.ExitStatus)
	case o.Result == "":
		return "unknown"
	}
	return "failed: " + o.Result
}

// scheduleFailedEvents raises ScheduleFailed once per failed run.
func (r *Reconciler) scheduleFailedEvents(ctx context.Context, name string, failed []schedFailure) {
	for _, f := range failed {
		r.Events.Record(ctx, &api.Event{Type: api.EventScheduleFailed, Severity: api.SeverityWarning, Object: api.KindDeployment + "/" + name,
			Message: fmt.Sprintf("schedule %s: the run of %s on node %s %s (bakery logs deployment/%s --runtime --schedule %s)",
				f.name, f.at.UTC().Format(time.RFC3339), f.node, f.result, name, f.name)})
	}
}

// schedLimits are a schedule's limits: the app's, without persistent
// directories under docker (a schedule's container gets none).
func schedLimits(s *api.DeploymentSpec) nf.Limits {
	l := nf.LimitsOf(s)
	if isDocker(s) {
		l.Persistent = nil
	}
	return l
}
