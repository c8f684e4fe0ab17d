package ui

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
)

// The traffic card of the deployment page shows what `bakery top` shows:
// the control plane's analytics (GET /api/v1/deployments/{name}/metrics)
// as numbers per node and in total, a chart of requests over the chosen
// window and each node's disk usage. The charts are SVG drawn here, on the
// server: no script draws them, and they use presentation attributes and
// CSS classes only (the CSP forbids inline styles).

// trafficWindow is a window the card offers, with the bucket its chart
// sums requests into.
type trafficWindow struct {
	Name   string
	Span   time.Duration
	Bucket time.Duration
}

// trafficWindows are the windows offered; the first is the default.
var trafficWindows = []trafficWindow{
	{"1h", time.Hour, time.Minute},
	{"6h", 6 * time.Hour, 5 * time.Minute},
	{"24h", 24 * time.Hour, 15 * time.Minute},
}

func windowNamed(name string) trafficWindow {
	for _, w := range trafficWindows {
		if w.Name == name {
			return w
		}
	}
	return trafficWindows[0]
}

// trafficRow is one line of the numbers table.
type trafficRow struct {
	Node, Window  string
	First         bool // the node's first row (names the node)
	Requests      int64
	PerSec        string
	Status        [5]int64
	Bytes         int64
	P50, P90, P99 string
}

// Chart geometry: the SVG's user units. The SVG is stretched to the
// card's width (preserveAspectRatio none), so text is kept outside it.
const (
	chartW, chartH = 600.0, 120.0
	sparkW, sparkH = 120.0, 24.0
)

// chartBar is one bucket of a chart: its requests stacked by class from
// the bottom (1xx–3xx, 4xx, 5xx), in the SVG's units.
type chartBar struct {
	X, W           float64
	OKY, OKH       float64
	Y4, H4, Y5, H5 float64
	Title          string
}

// chart is a bar chart of requests over time.
type chart struct {
	W, H     float64
	Bars     []chartBar
	Peak     int64
	Total    int64
	Per      string // "minute", "5 minutes"…
	From, To string
}

// nodeTraffic is a node's line of the disk table.
type nodeTraffic struct {
	Node      string
	Disk      *api.AppDisk
	Collected string
	Spark     *chart
}

type trafficData struct {
	Name    string
	Window  trafficWindow
	Windows []trafficWindow
	// Note is shown instead of the numbers: no metrics yet, or the store
	// keeps none, or reading them failed.
	Note  string
	Rows  []trafficRow
	Chart *chart
	Nodes []nodeTraffic

	code int // the HTTP status of the card alone
}

// loadTraffic reads the metrics of deployment name and lays them out for
// window. A failure is shown in the card (Note), not as a page error: the
// rest of the deployment page is still useful.
func (u *UI) loadTraffic(r *http.Request, name, window string) *trafficData {
	d := &trafficData{Name: name, Window: windowNamed(window), Windows: trafficWindows, code: http.StatusOK}
	m, err := u.client(r).Metrics(r.Context(), name)
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.Code == http.StatusNotImplemented:
		d.Note = "This server's store keeps no metrics."
		return d
	case err != nil:
		d.code = apiStatus(err)
		msg, _ := problems(err)
		d.Note = "Reading the metrics failed: " + msg
		return d
	case len(m.Nodes) == 0:
		d.Note = "No traffic measured yet. The control plane reads each node's nginx access log for this deployment every --analytics-interval of the server (default 1 minute)."
		return d
	}
	now := u.cfg.Now()
	var all []api.MetricPoint
	for _, n := range m.Nodes {
		d.Rows = append(d.Rows, trafficRows(n.Node, n.Points, d.Window, now)...)
		all = append(all, n.Points...)
		nt := nodeTraffic{Node: n.Node, Disk: n.Disk, Collected: "never"}
		if n.Collected != nil {
			nt.Collected = ago(now.Sub(n.Collected.Time))
		}
		nt.Spark = buildChart(n.Points, now, 30*time.Minute, time.Minute, sparkW, sparkH)
		d.Nodes = append(d.Nodes, nt)
	}
	if len(m.Nodes) > 1 {
		d.Rows = append(d.Rows, trafficRows("all nodes", all, d.Window, now)...)
	}
	d.Chart = buildChart(all, now, d.Window.Span, d.Window.Bucket, chartW, chartH)
	return d
}

// trafficRows are the last 5 minutes and the window of one node (or of
// all), as `bakery top` prints them.
func trafficRows(node string, pts []api.MetricPoint, w trafficWindow, now time.Time) []trafficRow {
	var out []trafficRow
	for i, win := range []struct {
		name string
		span time.Duration
	}{{"5m", 5 * time.Minute}, {w.Name, w.Span}} {
		s := api.Summarize(pts, now.Add(-win.span))
		out = append(out, trafficRow{
			Node: node, Window: win.name, First: i == 0,
			Requests: s.Requests, PerSec: fmt.Sprintf("%.2f", float64(s.Requests)/win.span.Seconds()),
			Status: s.Status, Bytes: s.Bytes,
			P50: latency(s.P50, s.Requests), P90: latency(s.P90, s.Requests), P99: latency(s.P99, s.Requests),
		})
	}
	return out
}

// latency writes a percentile of Summarize: the upper bound of its
// histogram bucket.
func latency(v float64, n int64) string {
	switch {
	case n == 0:
		return "–"
	case v < 0:
		return fmt.Sprintf(">%gs", api.LatencyBounds[len(api.LatencyBounds)-1]/1000)
	case v >= 1000:
		return fmt.Sprintf("≤%gs", v/1000)
	}
	return fmt.Sprintf("≤%gms", v)
}

// buildChart sums pts into buckets over the span before now (the bucket
// holding now last) and scales them to w×h, the busiest bucket full
// height.
func buildChart(pts []api.MetricPoint, now time.Time, span, bucket time.Duration, w, h float64) *chart {
	bs := int64(bucket / time.Second)
	n := int64(span / bucket)
	last := now.Unix() / bs * bs
	first := last - (n-1)*bs
	type sums struct{ ok, c4, c5 int64 }
	buckets := make([]sums, n)
	layout := "15:04"
	if span > 12*time.Hour {
		layout = "Jan 2 15:04"
	}
	c := &chart{W: w, H: h, Per: per(bucket),
		From: time.Unix(first, 0).UTC().Format(layout), To: time.Unix(last+bs, 0).UTC().Format("15:04")}
	for _, p := range pts {
		if p.Minute < first {
			continue
		}
		// A node whose clock is ahead logs minutes after now: they count
		// in the last bucket, as they count in the window's numbers.
		i := min((p.Minute-first)/bs, n-1)
		b := &buckets[i]
		b.c4 += p.Status[3]
		b.c5 += p.Status[4]
		b.ok += p.Requests - p.Status[3] - p.Status[4]
		c.Total += p.Requests
	}
	for _, b := range buckets {
		c.Peak = max(c.Peak, b.ok+b.c4+b.c5)
	}
	bw := w / float64(n)
	gap := min(bw*0.2, 2)
	for i, b := range buckets {
		total := b.ok + b.c4 + b.c5
		if total == 0 {
			continue
		}
		scale := func(v int64) float64 { return float64(v) * h / float64(c.Peak) }
		bar := chartBar{X: round2(float64(i) * bw), W: round2(bw - gap)}
		y := h
		bar.OKH = round2(scale(b.ok))
		y -= scale(b.ok)
		bar.OKY = round2(y)
		bar.H4 = round2(scale(b.c4))
		y -= scale(b.c4)
		bar.Y4 = round2(y)
		bar.H5 = round2(scale(b.c5))
		y -= scale(b.c5)
		bar.Y5 = round2(y)
		at := time.Unix(first+int64(i)*bs, 0).UTC().Format("15:04")
		bar.Title = fmt.Sprintf("%s: %d requests (%d 4xx, %d 5xx)", at, total, b.c4, b.c5)
		c.Bars = append(c.Bars, bar)
	}
	return c
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func per(bucket time.Duration) string {
	if bucket == time.Minute {
		return "minute"
	}
	return fmt.Sprintf("%d minutes", int(bucket/time.Minute))
}

// ago writes a duration for "… ago".
func ago(d time.Duration) string {
	switch {
	case d < 5*time.Second: // the UI's clock may be a little behind the collector's
		return "just now"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// deploymentTraffic is the traffic card alone, which the deployment page
// reloads every 30 s and when another window is chosen (htmx).
func (u *UI) deploymentTraffic(w http.ResponseWriter, r *http.Request, s *session) {
	name := mux.Vars(r)["name"]
	if reason := api.ValidateName(name); reason != "" {
		http.Error(w, "deployment name: "+reason, http.StatusBadRequest)
		return
	}
	d := u.loadTraffic(r, name, r.URL.Query().Get("window"))
	// An error status keeps htmx from swapping the card (a deleted
	// deployment, say); the page's own load shows the note instead.
	u.render(w, r, d.code, "deployment", "traffic", page{CSRF: s.CSRF, Data: d})
}
