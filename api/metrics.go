package api

import "time"

// DeploymentMetrics is a deployment's traffic and disk usage per node, as
// the control plane's analytics collected them from nginx access logs and
// the nodes' disks (GET /api/v1/deployments/{name}/metrics). Points are
// per minute, oldest first, bounded by the server's retention.
type DeploymentMetrics struct {
	Deployment string        `json:"deployment"`
	Nodes      []NodeMetrics `json:"nodes"`
}

// NodeMetrics is one deployment's metrics on one node.
type NodeMetrics struct {
	Node string `json:"node"`
	// Points are per-minute aggregates of the access log, oldest first.
	Points []MetricPoint `json:"points,omitempty"`
	// Disk is the latest disk usage measured.
	Disk *AppDisk `json:"disk,omitempty"`
	// Collected is when the node was last read and found with something
	// new; a node read with nothing new refreshes it every few minutes
	// (the control plane writes no record for an idle app every cycle).
	Collected *Time `json:"collected,omitempty"`
	// Log is how far the node's access log has been read.
	Log LogPosition `json:"log"`
}

// LogPosition identifies how far a log file has been read: its inode and
// the byte offset after the last complete line counted.
type LogPosition struct {
	Inode  uint64 `json:"inode,omitempty"`
	Offset int64  `json:"offset,omitempty"`
}

// AppDisk is the disk space an app uses on a node, in bytes.
type AppDisk struct {
	Releases  int64 `json:"releases"`
	Repo      int64 `json:"repo"`
	AccessLog int64 `json:"accessLog"`
	// Images is the size of the app's docker images (0 for systemd apps).
	Images int64 `json:"images,omitempty"`
}

// LatencyBounds are the upper bounds, in milliseconds, of the latency
// histogram buckets of a MetricPoint; a last bucket counts the slower
// requests.
var LatencyBounds = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000}

// MetricPoint aggregates one minute of requests.
type MetricPoint struct {
	// Minute is the start of the minute (Unix seconds, a multiple of 60).
	Minute int64 `json:"t"`
	// Requests counts every request; Status counts them by class
	// (index 0: 1xx … 4: 5xx).
	Requests int64    `json:"n"`
	Status   [5]int64 `json:"s"`
	// Bytes is the response body bytes sent.
	Bytes int64 `json:"b"`
	// Latency is a histogram of request times over LatencyBounds
	// (len(LatencyBounds)+1 buckets).
	Latency []int64 `json:"l"`
	// LatencySum is the sum of request times in milliseconds.
	LatencySum float64 `json:"ls"`
}

// TrafficSummary sums the points of a time window.
type TrafficSummary struct {
	Requests int64
	Status   [5]int64
	Bytes    int64
	// P50, P90 and P99 are latency percentiles in milliseconds, from the
	// histogram (upper bound of the bucket holding the percentile; -1 when
	// above the last bound).
	P50, P90, P99 float64
	// Mean latency in milliseconds.
	Mean float64
}

// Summarize sums the points whose minute is at or after since.
func Summarize(points []MetricPoint, since time.Time) TrafficSummary {
	var s TrafficSummary
	hist := make([]int64, len(LatencyBounds)+1)
	var sum float64
	for _, p := range points {
		if p.Minute < since.Unix() {
			continue
		}
		s.Requests += p.Requests
		for i := range s.Status {
			s.Status[i] += p.Status[i]
		}
		s.Bytes += p.Bytes
		for i, c := range p.Latency {
			if i < len(hist) {
				hist[i] += c
			}
		}
		sum += p.LatencySum
	}
	if s.Requests > 0 {
		s.Mean = sum / float64(s.Requests)
	}
	s.P50, s.P90, s.P99 = percentile(hist, 0.50), percentile(hist, 0.90), percentile(hist, 0.99)
	return s
}

func percentile(hist []int64, q float64) float64 {
	var total int64
	for _, c := range hist {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.999999)
	var seen int64
	for i, c := range hist {
		seen += c
		if seen >= rank {
			if i < len(LatencyBounds) {
				return LatencyBounds[i]
			}
			return -1
		}
	}
	return -1
}

// LatencyBucket returns the histogram bucket of a request time in
// milliseconds.
func LatencyBucket(ms float64) int {
	for i, b := range LatencyBounds {
		if ms <= b {
			return i
		}
	}
	return len(LatencyBounds)
}
