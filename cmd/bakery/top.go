package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"bakery.dev/bakery/api"
)

func newTopCmd(a *app) *cobra.Command {
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "top deployment/NAME | top NAME",
		Short: "Show a deployment's traffic and disk usage per node",
		Long: `Show what the control plane collected from the nodes' nginx access logs for a
deployment's sites — requests, status classes, bytes, latency percentiles —
over the last 5 minutes and the last --window (default 1h), a chart of
requests per minute, and the disk space of the app's releases, git mirror
and access log on each node.

Metrics are read from the nodes every --analytics-interval of the server
(default 1m), by offset: only what nginx appended since the last read.`,
		Example: `  bakery top deployment/hello
  bakery top hello --window 24h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if k, n, ok := strings.Cut(name, "/"); ok {
				kind, err := api.KindFor(k)
				if err != nil || kind != api.KindDeployment {
					return usageErrorf("top shows deployments: deployment/NAME, not %q", name)
				}
				name = n
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			m, err := c.Metrics(cmd.Context(), name)
			if err != nil {
				return a.explain(c, err)
			}
			return printTop(a.out, m, window, time.Now())
		},
	}
	cmd.Flags().DurationVar(&window, "window", time.Hour, "the longer window summed besides the last 5 minutes")
	return cmd
}

func printTop(w io.Writer, m *api.DeploymentMetrics, window time.Duration, now time.Time) error {
	if len(m.Nodes) == 0 {
		fmt.Fprintf(w, "No metrics for deployment %s yet (collected every --analytics-interval of the server).\n", m.Deployment)
		return nil
	}
	tw := newTabWriter(w)
	fmt.Fprintln(tw, "NODE\tWINDOW\tREQUESTS\tREQ/S\t1XX\t2XX\t3XX\t4XX\t5XX\tSENT\tP50\tP90\tP99")
	var all []api.MetricPoint
	row := func(node string, pts []api.MetricPoint) {
		for _, win := range []time.Duration{5 * time.Minute, window} {
			s := api.Summarize(pts, now.Add(-win))
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", node, humanDuration(win), s.Requests,
				float64(s.Requests)/win.Seconds(), s.Status[0], s.Status[1], s.Status[2], s.Status[3], s.Status[4],
				api.HumanBytesCompact(s.Bytes), ms(s.P50, s.Requests), ms(s.P90, s.Requests), ms(s.P99, s.Requests))
		}
	}
	for _, n := range m.Nodes {
		row(n.Node, n.Points)
		all = append(all, n.Points...)
	}
	if len(m.Nodes) > 1 {
		row("(all)", all)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTabWriter(w)
	fmt.Fprintln(tw, "NODE\tREQUESTS/MIN (LAST 30 MIN)\tRELEASES\tGIT\tACCESS-LOG\tIMAGES\tCOLLECTED")
	for _, n := range m.Nodes {
		rel, repo, lg, img := "-", "-", "-", "-"
		if d := n.Disk; d != nil {
			rel, repo, lg = api.HumanBytesCompact(d.Releases), api.HumanBytesCompact(d.Repo), api.HumanBytesCompact(d.AccessLog)
			if d.Images > 0 {
				img = api.HumanBytesCompact(d.Images)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, sparkline(n.Points, now, 30), rel, repo, lg, img, age(n.Collected, now))
	}
	return tw.Flush()
}

func ms(v float64, n int64) string {
	switch {
	case n == 0:
		return "-"
	case v < 0:
		return fmt.Sprintf(">%gs", api.LatencyBounds[len(api.LatencyBounds)-1]/1000)
	case v >= 1000:
		return fmt.Sprintf("≤%gs", v/1000)
	}
	return fmt.Sprintf("≤%gms", v)
}

// sparkline draws requests per minute over the last minutes, oldest
// first, scaled to the busiest minute.
func sparkline(pts []api.MetricPoint, now time.Time, minutes int) string {
	bars := []rune("▁▂▃▄▅▆▇█")
	counts := make([]int64, minutes)
	start := now.Unix()/60*60 - int64(minutes-1)*60
	var peak int64
	for _, p := range pts {
		i := (p.Minute - start) / 60
		if i >= 0 && i < int64(minutes) {
			counts[i] += p.Requests
			peak = max(peak, counts[i])
		}
	}
	var b strings.Builder
	for _, c := range counts {
		switch {
		case c == 0:
			b.WriteRune(' ')
		default:
			b.WriteRune(bars[int((c*int64(len(bars)-1)+peak-1)/peak)])
		}
	}
	return "|" + b.String() + fmt.Sprintf("| max %d", peak)
}
