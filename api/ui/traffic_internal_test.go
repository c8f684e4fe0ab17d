package ui

import (
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
)

func TestBuildChart(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 30, 20, 0, time.UTC)
	min := func(ago int) int64 { return now.Unix()/60*60 - int64(ago)*60 }
	pts := []api.MetricPoint{
		{Minute: min(120), Requests: 99},                         // before the window
		{Minute: min(59), Requests: 10, Status: [5]int64{0, 10}}, // first bucket
		{Minute: min(30), Requests: 40, Status: [5]int64{0, 20, 0, 10, 10}},
		{Minute: min(0), Requests: 20, Status: [5]int64{0, 20}}, // this minute: last bucket
		{Minute: min(-1), Requests: 5, Status: [5]int64{0, 5}},  // a node's clock ahead: in the last bucket
	}
	c := buildChart(pts, now, time.Hour, time.Minute, 600, 120)
	if c.Total != 75 || c.Peak != 40 || len(c.Bars) != 3 || c.From != "09:31" || c.To != "10:31" || c.Per != "minute" {
		t.Fatalf("chart: total %d peak %d bars %d from %s to %s per %s", c.Total, c.Peak, len(c.Bars), c.From, c.To, c.Per)
	}
	first, peak, last := c.Bars[0], c.Bars[1], c.Bars[2]
	if first.X != 0 || first.OKH != 30 || first.OKY != 90 || first.H4 != 0 || last.X != 590 || last.OKH != 75 {
		t.Errorf("first %+v last %+v", first, last)
	}
	// 20 ok at the bottom, 10 4xx above, 10 5xx on top, full height.
	if peak.OKY != 60 || peak.OKH != 60 || peak.Y4 != 30 || peak.H4 != 30 || peak.Y5 != 0 || peak.H5 != 30 || peak.X != 290 || peak.W != 8 {
		t.Errorf("peak bar %+v", peak)
	}
	if peak.Title != "10:00: 40 requests (10 4xx, 10 5xx)" {
		t.Errorf("title %q", peak.Title)
	}
	day := buildChart(pts, now, 24*time.Hour, 15*time.Minute, 600, 120)
	if len(day.Bars) != 4 || day.Per != "15 minutes" || day.From != "Nov 26 10:45" || day.Total != 174 {
		t.Errorf("24h: %d bars per %s from %s total %d", len(day.Bars), day.Per, day.From, day.Total)
	}
	if e := buildChart(nil, now, time.Hour, time.Minute, 600, 120); len(e.Bars) != 0 || e.Peak != 0 {
		t.Errorf("empty chart %+v", e)
	}
}

func TestScrub(t *testing.T) {
	if got := scrub(`spec.data.A: "hunter22" is bad; hunter22`, "hunter22"); got != `spec.data.A: "***" is bad; ***` {
		t.Errorf("scrub: %q", got)
	}
	if got := scrub("a 2xx answer", "2xx"); got != "a 2xx answer" {
		t.Errorf("short values are left alone: %q", got)
	}
}

func TestLatency(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		n    int64
		want string
	}{{0, 0, "–"}, {5, 3, "≤5ms"}, {2000, 1, "≤2s"}, {-1, 1, ">30s"}} {
		if got := latency(tc.v, tc.n); got != tc.want {
			t.Errorf("latency(%v, %d) = %q, want %q", tc.v, tc.n, got, tc.want)
		}
	}
	if !strings.HasSuffix(ago(3*time.Minute), "m ago") {
		t.Error(ago(3 * time.Minute))
	}
}

// BenchmarkTrafficLayout lays out a full record: 3 nodes × 24 h of
// per-minute points, the 24 h window.
func BenchmarkTrafficLayout(b *testing.B) {
	now := time.Now()
	var nodes [3][]api.MetricPoint
	for n := range nodes {
		for m := range 1440 {
			nodes[n] = append(nodes[n], api.MetricPoint{Minute: now.Unix()/60*60 - int64(1439-m)*60, Requests: int64(m % 50), Status: [5]int64{0, int64(m % 50)},
				Latency: make([]int64, len(api.LatencyBounds)+1)})
		}
	}
	w := windowNamed("24h")
	for b.Loop() {
		var all []api.MetricPoint
		for _, pts := range nodes {
			trafficRows("n", pts, w, now)
			buildChart(pts, now, 30*time.Minute, time.Minute, sparkW, sparkH)
			all = append(all, pts...)
		}
		trafficRows("all", all, w, now)
		buildChart(all, now, w.Span, w.Bucket, chartW, chartH)
	}
}
