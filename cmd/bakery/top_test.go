package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
)

func TestPrintTop(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	lat := func(bucket int, n int64) []int64 {
		h := make([]int64, len(api.LatencyBounds)+1)
		h[bucket] = n
		return h
	}
	minute := now.Unix() / 60 * 60
	m := &api.DeploymentMetrics{Deployment: "hello", Nodes: []api.NodeMetrics{
		{Node: "web-1", Points: []api.MetricPoint{
			{Minute: minute - 50*60, Requests: 100, Status: [5]int64{0, 100, 0, 0, 0}, Bytes: 2048, Latency: lat(3, 100)},
			{Minute: minute, Requests: 60, Status: [5]int64{0, 50, 0, 8, 2}, Bytes: 1024, Latency: lat(5, 60)},
		}, Disk: &api.AppDisk{Releases: 3 << 20, Repo: 1 << 20, AccessLog: 4096, Images: 7 << 20}, Collected: api.NewTime(now.Add(-10 * time.Second))},
		{Node: "web-2", Points: []api.MetricPoint{{Minute: minute - 60, Requests: 30, Status: [5]int64{0, 30, 0, 0, 0}, Latency: lat(12, 30)}}},
	}}
	var b bytes.Buffer
	if err := printTop(&b, m, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"web-1   5m       60         0.20    0     50    0     8     2     1.0KiB   ≤50ms   ≤50ms   ≤50ms",
		"web-1   60m      160        0.04    0     150   0     8     2     3.0KiB   ≤10ms   ≤50ms   ≤50ms",
		"web-2   5m       30         0.10    0     30    0     0     0     0B       ≤10s    ≤10s    ≤10s",
		"(all)   60m      190",
		"3.0MiB",
		"7.0MiB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "█| max 60") {
		t.Errorf("sparkline:\n%s", out)
	}
	b.Reset()
	printTop(&b, &api.DeploymentMetrics{Deployment: "x"}, time.Hour, now)
	if !strings.Contains(b.String(), "No metrics for deployment x yet") {
		t.Error(b.String())
	}
}
