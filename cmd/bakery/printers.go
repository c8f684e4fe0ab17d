package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/manifests"
)

// Output formats of `bakery get`.
var outputFormats = []string{"table", "wide", "yaml", "json", "name"}

func checkOutput(o string) error {
	for _, f := range outputFormats {
		if o == f {
			return nil
		}
	}
	return usageErrorf("--output must be one of %s, not %q", strings.Join(outputFormats, ", "), o)
}

// newTabWriter aligns columns the way kubectl does.
func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
}

// printObjects writes objs in format. single says the user asked for
// exactly one object: yaml and json then print it alone, not a list.
func printObjects(w io.Writer, objs []api.Object, format string, single bool, now time.Time) error {
	switch format {
	case "name":
		for _, o := range objs {
			fmt.Fprintln(w, objName(o))
		}
		return nil
	case "yaml":
		b, err := manifests.Encode(objs...)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "json":
		if single && len(objs) == 1 {
			b, err := manifests.EncodeJSON(objs[0])
			if err != nil {
				return err
			}
			_, err = w.Write(b)
			return err
		}
		// A list request answers a List even of one item, as kubectl does.
		items := make([]json.RawMessage, len(objs))
		for i, o := range objs {
			b, err := manifests.EncodeJSON(o)
			if err != nil {
				return err
			}
			items[i] = b
		}
		return writeJSON(w, struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Items      []json.RawMessage `json:"items"`
		}{"v1", "List", items})
	}
	return printTable(w, objs, format == "wide", now)
}

// printTable prints one table per kind, in the order kinds first appear.
func printTable(w io.Writer, objs []api.Object, wide bool, now time.Time) error {
	var kinds []string
	byKind := map[string][]api.Object{}
	for _, o := range objs {
		k := o.GetTypeMeta().Kind
		if _, ok := byKind[k]; !ok {
			kinds = append(kinds, k)
		}
		byKind[k] = append(byKind[k], o)
	}
	for i, k := range kinds {
		if i > 0 {
			fmt.Fprintln(w)
		}
		tw := newTabWriter(w)
		switch k {
		case api.KindNode:
			nodeTable(tw, byKind[k], wide, now)
		case api.KindDeployment:
			deploymentTable(tw, byKind[k], wide, now)
		case api.KindManifestSource:
			sourceTable(tw, byKind[k], now)
		case api.KindSecret:
			secretTable(tw, byKind[k], now)
		default:
			fmt.Fprintln(tw, "NAME")
			for _, o := range byKind[k] {
				fmt.Fprintln(tw, o.GetObjectMeta().Name)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func nodeTable(w io.Writer, objs []api.Object, wide bool, now time.Time) {
	h := "NAME\tADDRESS\tREACHABLE\tREADY\tLAST-HANDSHAKE\tDISK\tAGE"
	if wide {
		h += "\tUSER\tPORT\tOS\tFREE"
	}
	fmt.Fprintln(w, h)
	for _, o := range objs {
		n := o.(*api.Node)
		addr := n.Spec.Address
		if n.Spec.Local {
			addr = "<local>"
		}
		disk, free := "-", "-"
		if d := n.Status.Disk; d != nil {
			disk = api.HumanBytesCompact(d.BakeryBytes)
			free = api.HumanBytesCompact(d.FreeBytes)
		}
		ready := string(api.ConditionUnknown)
		if c := api.FindCondition(n.Status.Conditions, api.ConditionReady); c != nil {
			ready = string(c.Status)
		}
		row := []string{n.Metadata.Name, orNone(addr), reachable(n), ready, ago(n.Status.LastHandshakeTime, now), disk, age(n.Metadata.CreationTimestamp, now)}
		if wide {
			port := "-"
			if n.Spec.Port != 0 {
				port = strconv.Itoa(n.Spec.Port)
			}
			row = append(row, orDash(n.Spec.User), port, orDash(n.Status.OS), free)
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
}

// reachable is the node's Reachable condition, or its status flag when the
// condition is missing, or Unknown before the first attempt.
func reachable(n *api.Node) string {
	if c := api.FindCondition(n.Status.Conditions, api.ConditionReachable); c != nil {
		return string(c.Status)
	}
	if n.Status.LastHandshakeTime == nil && n.Status.LastError == "" {
		return string(api.ConditionUnknown)
	}
	if n.Status.Reachable {
		return string(api.ConditionTrue)
	}
	return string(api.ConditionFalse)
}

func deploymentTable(w io.Writer, objs []api.Object, wide bool, now time.Time) {
	h := "NAME\tREADY\tCOMMIT\tREVISION\tPINNED\tNODES\tAGE"
	if wide {
		h += "\tRUNTIME\tREF\tHOSTS\tPROCESSES"
	}
	fmt.Fprintln(w, h)
	for _, o := range objs {
		d := o.(*api.Deployment)
		rev := "-"
		if d.Status.Revision > 0 {
			rev = strconv.FormatInt(d.Status.Revision, 10)
		}
		row := []string{d.Metadata.Name, readyCount(d), orDash(shortCommit(d.Status.Commit)), rev, pinned(d),
			deploymentNodes(d), age(d.Metadata.CreationTimestamp, now)}
		if wide {
			ref := d.Spec.Source.Ref
			if d.Spec.Source.Commit != "" {
				ref = shortCommit(d.Spec.Source.Commit)
			}
			var hosts []string
			if d.Spec.Ingress != nil {
				hosts = d.Spec.Ingress.Hosts
			}
			row = append(row, orDash(d.Spec.Runtime), orDash(ref), orDash(strings.Join(hosts, ",")), processesColumn(d))
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
}

// pinned is column PINNED: what an action's pin holds the deployment at
// instead of its ref ("rollback:3" for a rollback to revision 3,
// "redeploy:0123456" for a redeployed commit), or "-".
func pinned(d *api.Deployment) string {
	p := d.Status.Pin
	switch {
	case p == nil || p.Generation != d.Metadata.Generation:
		return "-"
	case p.Reason == api.TriggerRollback:
		return fmt.Sprintf("rollback:%d", p.Revision)
	}
	return p.Reason + ":" + shortCommit(p.Commit)
}

// readyCount is "ready/total" (api.Deployment.ReadyNodes).
func readyCount(d *api.Deployment) string {
	ready, total := d.ReadyNodes()
	return fmt.Sprintf("%d/%d", ready, total)
}

// deploymentNodes lists spec.nodes and the node selector.
func deploymentNodes(d *api.Deployment) string {
	parts := append([]string(nil), d.Spec.Nodes...)
	if len(d.Spec.NodeSelector) > 0 {
		parts = append(parts, "selector:"+formatLabels(d.Spec.NodeSelector))
	}
	return orDash(strings.Join(parts, ","))
}

func formatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

func shortCommit(c string) string {
	if len(c) > 7 {
		return c[:7]
	}
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// age is the time since t in kubectl's short form, "<unknown>" without t.
func age(t *api.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "<unknown>"
	}
	return humanDuration(now.Sub(t.Time))
}

// ago is age for optional timestamps: "-" when unset.
func ago(t *api.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return humanDuration(now.Sub(t.Time))
}

// humanDuration follows kubectl's duration.HumanDuration.
func humanDuration(d time.Duration) string {
	if s := int(d.Seconds()); s < -1 {
		return "<invalid>"
	} else if s < 0 {
		return "0s"
	} else if s < 60*2 {
		return fmt.Sprintf("%ds", s)
	}
	minutes := int(d / time.Minute)
	if minutes < 10 {
		if s := int(d/time.Second) % 60; s != 0 {
			return fmt.Sprintf("%dm%ds", minutes, s)
		}
		return fmt.Sprintf("%dm", minutes)
	} else if minutes < 60*3 {
		return fmt.Sprintf("%dm", minutes)
	}
	hours := int(d / time.Hour)
	switch {
	case hours < 8:
		if m := minutes % 60; m != 0 {
			return fmt.Sprintf("%dh%dm", hours, m)
		}
		return fmt.Sprintf("%dh", hours)
	case hours < 48:
		return fmt.Sprintf("%dh", hours)
	case hours < 24*8:
		if h := hours % 24; h != 0 {
			return fmt.Sprintf("%dd%dh", hours/24, h)
		}
		return fmt.Sprintf("%dd", hours/24)
	case hours < 24*365*2:
		return fmt.Sprintf("%dd", hours/24)
	case hours < 24*365*8:
		if dy := (hours / 24) % 365; dy != 0 {
			return fmt.Sprintf("%dy%dd", hours/24/365, dy)
		}
		return fmt.Sprintf("%dy", hours/24/365)
	}
	return fmt.Sprintf("%dy", hours/24/365)
}

// processesColumn is column PROCESSES of get -o wide: per process its
// running instances over the wanted ones, summed over the nodes
// ("worker:6/6"), or "-".
func processesColumn(d *api.Deployment) string {
	var out []string
	for _, p := range d.Spec.Processes {
		running, want := 0, 0
		for _, n := range d.Status.Nodes {
			for _, ps := range n.Processes {
				if ps.Name == p.Name {
					running += ps.Running
					want += ps.Replicas
				}
			}
		}
		out = append(out, fmt.Sprintf("%s:%d/%d", p.Name, running, want))
	}
	return orDash(strings.Join(out, ","))
}
