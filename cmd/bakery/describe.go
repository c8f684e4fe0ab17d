package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

// describeEvents is how many of an object's newest events describe shows.
const describeEvents = 10

func newDescribeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe TYPE [NAME…] | TYPE/NAME…",
		Short: "Show a human summary of nodes or deployments",
		Long: `Show a readable summary of objects: the essentials of their spec, their
conditions, and their observed status — for a deployment the resolved
commit, revision, current rollout and the slot on each node; for a node its
reachability, host key, OS and tools. Each ends with the object's newest
events (when the server keeps events). Without a NAME every object of the
type is described.`,
		Example: `  bakery describe deployment hello
  bakery describe node web-1
  bakery describe nodes`,
		ValidArgsFunction: completeTargets(a),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := parseTargets(args, false)
			if err != nil {
				return err
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			objs, failed, err := fetch(cmd, a, c, ts, "")
			if err != nil {
				return err
			}
			now := time.Now()
			leases := objectLeases(cmd.Context(), c)
			for i, o := range objs {
				if i > 0 {
					fmt.Fprintln(a.out)
				}
				key := o.GetTypeMeta().Kind + "/" + o.GetObjectMeta().Name
				describeWithLease(a.out, o, now, leases[key], objectEvents(cmd.Context(), a, c, o)...)
			}
			if len(objs) == 0 && failed == 0 {
				fmt.Fprintln(a.errOut, "No resources found.")
			}
			if failed > 0 {
				return &exitCodeError{code: exitError}
			}
			return nil
		},
	}
	return cmd
}

// describer prints aligned "Key: value" lines, indented by level.
type describer struct {
	tw interface {
		io.Writer
		Flush() error
	}
}

func (d describer) line(level int, key, format string, args ...any) {
	fmt.Fprintf(d.tw, "%s%s:\t%s\n", strings.Repeat("  ", level), key, fmt.Sprintf(format, args...))
}

func (d describer) section(level int, key string) {
	fmt.Fprintf(d.tw, "%s%s:\n", strings.Repeat("  ", level), key)
}

// objectEvents returns the newest events of o, or none when the server
// keeps no events (503), predates them (404) or fails (with a warning:
// describe shows the object all the same).
func objectEvents(ctx context.Context, a *app, c *client.Client, o api.Object) []*api.Event {
	object := o.GetTypeMeta().Kind + "/" + o.GetObjectMeta().Name
	evs, err := c.Events(ctx, object, describeEvents)
	if err != nil {
		if ae, ok := errors.AsType[*client.APIError](err); ok &&
			(ae.Code == http.StatusServiceUnavailable || ae.Code == http.StatusNotFound || ae.Code == http.StatusMethodNotAllowed) {
			return nil
		}
		fmt.Fprintf(a.errOut, "warning: events of %s: %v\n", object, err)
		return nil
	}
	return evs
}

// objectLeases returns the leases held now by key ("Kind/name"); none
// when the server cannot say (an older server, an error: describe shows
// the objects all the same).
func objectLeases(ctx context.Context, c *client.Client) map[string]*api.Lease {
	out := map[string]*api.Lease{}
	ls, err := c.Leases(ctx)
	if err != nil {
		return out
	}
	for i := range ls.Leases {
		out[ls.Leases[i].Key] = &ls.Leases[i]
	}
	return out
}

// describeWithLease prints o, which control plane reconciles it now
// (when lease is not nil) and then its events (newest first; no section
// when there are none).
func describeWithLease(w io.Writer, o api.Object, now time.Time, lease *api.Lease, events ...*api.Event) {
	tw := newTabWriter(w)
	d := describer{tw}
	m := o.GetObjectMeta()
	d.line(0, "Name", "%s", m.Name)
	d.line(0, "Kind", "%s", o.GetTypeMeta().Kind)
	d.line(0, "Labels", "%s", orNone(formatLabels(m.Labels)))
	d.line(0, "Annotations", "%s", orNone(formatLabels(m.Annotations)))
	if m.CreationTimestamp != nil {
		d.line(0, "Created", "%s (%s ago)", m.CreationTimestamp.Format(time.RFC3339), age(m.CreationTimestamp, now))
	}
	switch o := o.(type) {
	case *api.Deployment:
		d.line(0, "Generation", "%d (observed: %s)", m.Generation, observed(o.Status.ObservedGeneration))
		describeDeployment(d, o, now)
	case *api.Node:
		d.line(0, "Generation", "%d (observed: %s)", m.Generation, observed(o.Status.ObservedGeneration))
		describeNode(d, o, now)
	case *api.ManifestSource:
		d.line(0, "Generation", "%d (observed: %s)", m.Generation, observed(o.Status.ObservedGeneration))
		describeSource(d, o, now)
	case *api.Secret:
		d.line(0, "Generation", "%d", m.Generation)
		d.line(0, "Keys", "%s", orNone(strings.Join(o.Status.Keys, ", ")))
	}
	if lease != nil {
		d.line(0, "Reconciled by", "%s (for %s)", printable(lease.Server), ago(lease.Since, now))
	}
	describeEventTable(d, events, now)
	tw.Flush()
}

func describeEventTable(d describer, events []*api.Event, now time.Time) {
	if len(events) == 0 {
		return
	}
	d.section(0, "Events")
	fmt.Fprintln(d.tw, "  AGE\tTYPE\tMESSAGE")
	for _, e := range events {
		msg := printable(oneLine(e.Message))
		if e.Count > 1 {
			msg += fmt.Sprintf(" (x%d)", e.Count)
		}
		fmt.Fprintf(d.tw, "  %s\t%s\t%s\n", ago(e.Time, now), orDash(printable(e.Type)), msg)
	}
}

// printable replaces the control characters left in s (escape sequences
// of process output) so that they cannot act on the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func observed(g int64) string {
	if g == 0 {
		return "not yet"
	}
	return strconv.FormatInt(g, 10)
}

func describeDeployment(d describer, o *api.Deployment, now time.Time) {
	describeDeploymentSpec(d, o.Spec)
	describeDeploymentStatus(d, o, now)
}

// describeDeploymentSpec prints the Spec section.
func describeDeploymentSpec(d describer, s api.DeploymentSpec) {
	d.section(0, "Spec")
	src := s.Source.Repo
	if s.Source.Commit != "" {
		src += " @ commit " + s.Source.Commit
	} else if s.Source.Ref != "" {
		src += " @ " + s.Source.Ref
	}
	d.line(1, "Source", "%s", src)
	if len(s.Nodes) > 0 {
		d.line(1, "Nodes", "%s", strings.Join(s.Nodes, ", "))
	}
	if len(s.NodeSelector) > 0 {
		d.line(1, "Node selector", "%s", formatLabels(s.NodeSelector))
	}
	d.line(1, "Runtime", "%s", orDash(s.Runtime))
	if s.Docker != nil {
		d.line(1, "Docker", "dockerfile %s, network %s", orDash(s.Docker.Dockerfile), orDash(s.Docker.Network))
	}
	if s.Build.On != "" {
		d.line(1, "Build on", "%s", s.Build.On)
	}
	for _, b := range []struct{ k, v string }{{"Install", s.Build.Install}, {"Test", s.Build.Test}, {"Build", s.Build.Build}} {
		if b.v != "" {
			d.line(1, b.k, "%s", oneLine(b.v))
		}
	}
	if s.Run.Command != "" {
		d.line(1, "Command", "%s", oneLine(s.Run.Command))
	}
	if r := s.Release; r != nil {
		v := oneLine(r.Command)
		if r.Timeout != nil {
			v += " (timeout " + r.Timeout.String() + ")"
		}
		d.line(1, "Release", "%s", v)
	}
	if s.Run.Port != nil {
		d.line(1, "Port", "%d (blue), %d (green)", *s.Run.Port, *s.Run.Port+1)
	} else {
		d.line(1, "Port", "allocated per node")
	}
	if len(s.Run.Env) > 0 {
		names := make([]string, len(s.Run.Env))
		for i, e := range s.Run.Env {
			names[i] = e.Name
		}
		d.line(1, "Env", "%s", strings.Join(names, ", "))
	}
	if secrets := s.SecretNames(); len(secrets) > 0 {
		d.line(1, "Secrets", "%s", strings.Join(secrets, ", "))
	}
	h := s.HealthCheck
	hc := "GET " + orDash(h.Path)
	if h.Interval != nil {
		hc += " every " + h.Interval.String()
	}
	if h.Timeout != nil {
		hc += ", timeout " + h.Timeout.String()
	}
	hc += fmt.Sprintf(", %d retries", h.Retries)
	if h.StartPeriod != nil && h.StartPeriod.Duration > 0 {
		hc += ", start period " + h.StartPeriod.String()
	}
	d.line(1, "Health check", "%s", hc)
	if ing := s.Ingress; ing != nil {
		v := orNone(strings.Join(ing.Hosts, ", "))
		if ing.TLS != nil {
			v += " (TLS, " + ing.TLS.Email + ")"
		}
		d.line(1, "Ingress", "%s", v)
		for _, r := range ing.Redirects {
			d.line(2, "Redirect", "%s → %s (301)", r.From, r.To)
		}
		if p := ing.Proxy; p != nil {
			var ps []string
			if p.WebSockets != nil && !*p.WebSockets {
				ps = append(ps, "websockets off")
			}
			if p.Buffering != nil && !*p.Buffering {
				ps = append(ps, "buffering off")
			}
			if p.ClientMaxBodySize != "" {
				ps = append(ps, "max body "+p.ClientMaxBodySize)
			}
			if p.ReadTimeout != nil {
				ps = append(ps, "read timeout "+p.ReadTimeout.String())
			}
			if p.SendTimeout != nil {
				ps = append(ps, "send timeout "+p.SendTimeout.String())
			}
			if len(p.Headers) > 0 {
				ps = append(ps, fmt.Sprintf("%d response headers", len(p.Headers)))
			}
			if len(ps) > 0 {
				d.line(2, "Proxy", "%s", strings.Join(ps, ", "))
			}
		}
		if m := ing.Maintenance; m != nil && m.Enabled {
			d.line(2, "Maintenance", "ON: every request is answered 503 (%q)", cmp.Or(m.Message, api.DefaultMaintenanceMessage))
		}
	}
	st := orDash(s.Strategy.Type)
	st += fmt.Sprintf(", max unavailable %d", s.Strategy.MaxUnavailable)
	if s.Strategy.MaxParallel > 0 {
		st += fmt.Sprintf(", max parallel %d", s.Strategy.MaxParallel)
	}
	if s.Strategy.Drain != nil {
		st += ", drain " + s.Strategy.Drain.String()
	}
	d.line(1, "Strategy", "%s", st)
	d.line(1, "Keep releases", "%d", s.KeepReleases)
	if s.Suspend {
		d.line(1, "Suspended", "yes: the control loop changes nothing")
	}
}

// describeDeploymentStatus prints the Status section, the nodes and what
// runs on them.
func describeDeploymentStatus(d describer, o *api.Deployment, now time.Time) {
	t := o.Status
	d.section(0, "Status")
	d.line(1, "Commit", "%s", orNone(t.Commit))
	d.line(1, "Revision", "%s", revision(t.Revision))
	if r := t.Release; r != nil {
		v := fmt.Sprintf("%s for commit %s", r.Result, shortCommit(r.Commit))
		if r.Node != "" {
			v += " on " + r.Node
		}
		if r.DurationMillis > 0 {
			v += fmt.Sprintf(" in %s", time.Duration(r.DurationMillis)*time.Millisecond)
		}
		if r.ExitCode != 0 {
			v += fmt.Sprintf(" (exit %d)", r.ExitCode)
		}
		if r.Rollout != "" {
			v += ", rollout " + r.Rollout
		}
		d.line(1, "Last release", "%s", v)
	}
	if r := t.CurrentRollout; r != nil {
		d.line(1, "Current rollout", "%s (%s)", r.ID, r.State)
	} else {
		d.line(1, "Current rollout", "<none>")
	}
	d.line(1, "Ready", "%s", readyCount(o))
	if p := t.Pin; p != nil && p.Generation == o.Metadata.Generation {
		v := fmt.Sprintf("commit %s (%s)", shortCommit(p.Commit), p.Reason)
		if p.Reason == api.TriggerRollback {
			v = fmt.Sprintf("revision %d, commit %s (rollback", p.Revision, shortCommit(p.Commit))
			if !p.SpecRestored {
				v += "; no recorded spec: commit only"
			}
			v += ")"
		}
		d.line(1, "Pinned", "%s; 'bakery rollout resume deployment/%s' follows the ref again", v, o.Metadata.Name)
	}
	if w := t.Waiting; w != nil {
		d.line(1, "Waiting for", "%s (since %s): %s", strings.Join(w.Nodes, ", "), ago(&w.Since, now), oneLine(w.Message))
	}
	if m := t.Mixed; m != nil {
		d.line(1, "Mixed versions", "since %s (see the nodes below)", ago(&m.Since, now))
	}
	conditions(d, t.Conditions, now)
	if len(t.Nodes) == 0 {
		d.line(0, "Nodes", "<none>")
		return
	}
	d.section(0, "Nodes")
	fmt.Fprintln(d.tw, "  NODE\tSLOT\tCOMMIT\tREVISION\tPORT\tHEALTHY\tUNIT\tMESSAGE")
	for _, n := range t.Nodes {
		port, rev := "-", "-"
		if n.Port != 0 {
			port = strconv.Itoa(n.Port)
		}
		if n.Revision != 0 {
			rev = strconv.FormatInt(n.Revision, 10)
		}
		fmt.Fprintf(d.tw, "  %s\t%s\t%s\t%s\t%s\t%t\t%s\t%s\n", n.Node, orDash(n.ActiveSlot), orDash(shortCommit(n.Commit)),
			rev, port, n.Healthy, orDash(n.UnitState), oneLine(n.Message))
	}
	describeCertificates(d, t.Nodes, now)
	describeProcesses(d, t.Nodes)
	describePersistent(d, t.Nodes)
	describeSchedules(d, o, now)
}

// describePersistent lists each node's persistent directories (spec.persistent)
// with their sizes against the advisory size.
func describePersistent(d describer, nodes []api.NodeAppStatus) {
	any := false
	for _, n := range nodes {
		any = any || len(n.Persistent) > 0
	}
	if !any {
		return
	}
	d.section(0, "Persistent")
	fmt.Fprintln(d.tw, "  NODE\tPATH\tUSED\tSIZE")
	for _, n := range nodes {
		for _, p := range n.Persistent {
			used := "?"
			if p.Bytes >= 0 {
				used = humanBytes(p.Bytes)
			}
			size := orDash(p.Size)
			if p.OverSize {
				size += " (over)"
			}
			fmt.Fprintf(d.tw, "  %s\t%s\t%s\t%s\n", n.Node, p.Path, used, size)
		}
	}
}

// describeProcesses lists each node's processes (spec.processes): running
// instances over replicas, and the revision they run.
func describeProcesses(d describer, nodes []api.NodeAppStatus) {
	any := false
	for _, n := range nodes {
		any = any || len(n.Processes) > 0
	}
	if !any {
		return
	}
	d.section(0, "Processes")
	fmt.Fprintln(d.tw, "  NODE\tPROCESS\tRUNNING\tREVISION")
	for _, n := range nodes {
		for _, p := range n.Processes {
			fmt.Fprintf(d.tw, "  %s\t%s\t%d/%d\t%s\n", n.Node, p.Name, p.Running, p.Replicas, revision(p.Revision))
		}
	}
}

// describeSchedules lists the schedules with their last and next runs.
func describeSchedules(d describer, o *api.Deployment, now time.Time) {
	if len(o.Spec.Schedules) == 0 {
		return
	}
	st := map[string]api.ScheduleStatus{}
	for _, s := range o.Status.Schedules {
		st[s.Name] = s
	}
	d.section(0, "Schedules")
	fmt.Fprintln(d.tw, "  NAME	SCHEDULE	NODES	LAST RUN	RESULT	DURATION	NEXT RUN")
	for _, sc := range o.Spec.Schedules {
		s := st[sc.Name]
		last, next, dur := "never", "-", "-"
		if s.LastRun != nil {
			last = ago(s.LastRun, now)
			if s.Node != "" {
				last += " on " + s.Node
			}
		}
		if s.NextRun != nil {
			next = "in " + humanDuration(s.NextRun.Sub(now))
		}
		if s.Duration != nil {
			dur = s.Duration.Duration.String()
		}
		nodes := sc.Node
		if len(s.Nodes) > 0 {
			nodes = strings.Join(s.Nodes, ",")
		}
		fmt.Fprintf(d.tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", sc.Name, sc.Schedule, nodes, last, orDash(s.Result), dur, next)
	}
}

// describeCertificates lists each node's certificate per TLS host.
func describeCertificates(d describer, nodes []api.NodeAppStatus, now time.Time) {
	any := false
	for _, n := range nodes {
		any = any || len(n.Certificates) > 0
	}
	if !any {
		return
	}
	d.section(0, "Certificates")
	fmt.Fprintln(d.tw, "  NODE\tHOST\tEXPIRES\tIN\tSERIAL")
	for _, n := range nodes {
		for _, c := range n.Certificates {
			if c.NotAfter == nil {
				fmt.Fprintf(d.tw, "  %s\t%s\t<none>\t-\t-\n", n.Node, c.Host)
				continue
			}
			fmt.Fprintf(d.tw, "  %s\t%s\t%s\t%s\t%s\n", n.Node, c.Host, c.NotAfter.UTC().Format(time.RFC3339),
				humanDuration(c.NotAfter.Sub(now)), orDash(c.Serial))
		}
	}
}

func revision(r int64) string {
	if r == 0 {
		return "<none>"
	}
	return strconv.FormatInt(r, 10)
}

func describeNode(d describer, o *api.Node, now time.Time) {
	s := o.Spec
	d.section(0, "Spec")
	if s.Local {
		d.line(1, "Local", "yes: commands run on the control plane's host")
	} else {
		d.line(1, "Address", "%s:%d", s.Address, s.Port)
		d.line(1, "User", "%s", s.User)
	}
	if s.Via != "" {
		d.line(1, "Via", "%s", s.Via)
	}
	if s.HostKey != "" {
		d.line(1, "Host key", "pinned (%s)", truncate(s.HostKey, 40))
	} else if !s.Local {
		d.line(1, "Host key", "trust on first use")
	}
	t := o.Status
	d.section(0, "Status")
	d.line(1, "Reachable", "%s", reachable(o))
	if t.LastHandshakeTime != nil {
		d.line(1, "Last handshake", "%s (%s ago)", t.LastHandshakeTime.Format(time.RFC3339), age(t.LastHandshakeTime, now))
	}
	if t.LastError != "" {
		d.line(1, "Last error", "%s", oneLine(t.LastError))
	}
	if t.HostKeyFingerprint != "" {
		d.line(1, "Host key", "%s", t.HostKeyFingerprint)
	}
	if t.OS != "" || t.Kernel != "" {
		d.line(1, "OS", "%s", strings.TrimSpace(t.OS+" "+t.Kernel))
	}
	if len(t.Tools) > 0 {
		d.line(1, "Tools", "%s", strings.Join(t.Tools, ", "))
	}
	if u := t.Disk; u != nil {
		d.line(1, "Disk", "%s used by Bakery, %s free of %s", api.HumanBytesCompact(u.BakeryBytes), api.HumanBytesCompact(u.FreeBytes), api.HumanBytesCompact(u.FilesystemBytes))
	}
	if l := t.LastDeployment; l != nil {
		v := l.Deployment
		if l.Commit != "" {
			v += " @ " + shortCommit(l.Commit)
		}
		if l.Revision != 0 {
			v += fmt.Sprintf(" (revision %d)", l.Revision)
		}
		if l.Time != nil {
			v += ", " + age(l.Time, now) + " ago"
		}
		d.line(1, "Last deployment", "%s", v)
	}
	conditions(d, t.Conditions, now)
}

func conditions(d describer, cs []api.Condition, now time.Time) {
	if len(cs) == 0 {
		d.line(0, "Conditions", "<none>")
		return
	}
	d.section(0, "Conditions")
	fmt.Fprintln(d.tw, "  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
	for _, c := range cs {
		fmt.Fprintf(d.tw, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, orDash(c.Reason), age(c.LastTransitionTime, now), oneLine(c.Message))
	}
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// humanBytes writes n bytes in binary units (KiB, MiB, GiB, …).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
