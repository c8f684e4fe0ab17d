package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/sshexec"
)

// Collector collects traffic and disk metrics of deployments from their
// nodes: every Interval, one SSH command per node reads what nginx
// appended to each app's access log since the last read (by inode and
// byte offset, never the whole file; a rotated file is finished from its
// .1 name), and measures the app's disk usage. Requests are aggregated
// per minute (counts, status classes, bytes, a latency histogram) into
// each deployment's metrics record, kept in the store (store.Settings)
// with its read positions, in one write: a control plane that restarts
// continues where the record says and counts nothing twice. Points older
// than Retention are dropped.
//
// Several control planes sharing a store collect under one lock
// (Locker key "Analytics/collect"): one of them per cycle.
type Collector struct {
	Store     store.Store
	Settings  store.Settings
	Connector nodeconn.Connector
	Locker    store.Locker
	Logger    *slog.Logger
	// Interval between collections (default 60s); Retention of points
	// (default 24h).
	Interval, Retention time.Duration
	// MaxBytes bounds what is read of one app's log per cycle (default
	// 8 MiB); the rest is read in the next cycles.
	MaxBytes int64
	// CollectedRefresh is how often a record whose read found nothing new
	// is written anyway, to refresh its Collected time (default
	// DefaultCollectedRefresh).
	CollectedRefresh time.Duration
	// LogDir and AppsDir default to the node layout (tests point them at
	// a local directory).
	LogDir, AppsDir string
}

// CollectStats says what one collection cost, per node.
type CollectStats struct {
	Nodes map[string]NodeCollectStats
}

// NodeCollectStats is one node's share of a collection.
type NodeCollectStats struct {
	Apps     int
	Bytes    int64 // bytes of command output (mostly log lines)
	Lines    int64
	Duration time.Duration
	Err      error
}

func (a *Collector) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

func (a *Collector) interval() time.Duration {
	if a.Interval > 0 {
		return a.Interval
	}
	return time.Minute
}

// DefaultCollectedRefresh is the default of Collector.CollectedRefresh.
const DefaultCollectedRefresh = 5 * time.Minute

func (a *Collector) collectedRefresh() time.Duration {
	if a.CollectedRefresh > 0 {
		return a.CollectedRefresh
	}
	return DefaultCollectedRefresh
}

func (a *Collector) retention() time.Duration {
	if a.Retention > 0 {
		return a.Retention
	}
	return 24 * time.Hour
}

// Run collects every Interval until ctx ends.
func (a *Collector) Run(ctx context.Context) {
	t := time.NewTicker(a.interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := a.Collect(ctx)
		if err != nil && ctx.Err() == nil {
			a.log().Warn("analytics: collection failed", "err", err)
		}
		for node, s := range st.Nodes {
			if s.Err != nil {
				a.log().Warn("analytics: reading node failed", "node", node, "err", s.Err)
				continue
			}
			a.log().Debug("analytics: node read", "node", node, "apps", s.Apps, "bytes", s.Bytes, "lines", s.Lines, "took", s.Duration)
		}
	}
}

// Collect reads every node that runs a deployment once and stores what
// it found.
func (a *Collector) Collect(ctx context.Context) (stats CollectStats, err error) {
	stats = CollectStats{Nodes: map[string]NodeCollectStats{}}
	locker := a.Locker
	if locker == nil {
		locker = store.NopLocker{}
	}
	// One collection per cycle across the control planes sharing the
	// store: a cycle another one finished less than 90 % of an interval
	// ago, or is running now, is not repeated here.
	lk, err := locker.TryLock(ctx, store.Claim{Key: "Analytics/collect", DoneWithin: a.interval() * 9 / 10})
	if err != nil {
		return stats, err
	}
	if !lk.Held {
		return stats, nil
	}
	defer func() { lk.Release(err == nil) }()
	ctx = lk.Ctx
	w, err := a.load(ctx)
	if err != nil {
		return stats, err
	}
	now := time.Now()
	changed := map[string]bool{}
	for r := range a.readNodes(ctx, w) {
		if r.stats.Err == nil {
			for app, ar := range r.found {
				nm := nodeMetrics(w.records[app], r.node)
				before, _ := json.Marshal(nm)
				r.stats.Lines += merge(ar, nm)
				// Written only when the read found something new (lines,
				// a moved position, another disk usage), or to refresh
				// Collected every CollectedRefresh: an idle app costs no
				// write per cycle.
				after, _ := json.Marshal(nm)
				if !bytes.Equal(before, after) || nm.Collected == nil || now.Sub(nm.Collected.Time) >= a.collectedRefresh() {
					nm.Collected = api.NewTime(now)
					changed[app] = true
				}
			}
		}
		stats.Nodes[r.node] = r.stats
	}
	return stats, a.save(ctx, w.records, changed, now)
}

// work is what one collection reads: the metrics records of every
// deployment, and which apps run on which node.
type work struct {
	records map[string]*api.DeploymentMetrics
	apps    map[string][]string // node → apps on it
	byName  map[string]*api.Node
}

// load reads the deployments, their nodes and their metrics records.
func (a *Collector) load(ctx context.Context) (*work, error) {
	deps, err := a.Store.List(ctx, api.KindDeployment, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	nodes, err := a.Store.List(ctx, api.KindNode, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	w := &work{records: map[string]*api.DeploymentMetrics{}, apps: map[string][]string{}, byName: map[string]*api.Node{}}
	for _, o := range nodes {
		w.byName[o.GetObjectMeta().Name] = o.(*api.Node)
	}
	for _, o := range deps {
		d := o.(*api.Deployment)
		name := d.Metadata.Name
		rec, err := store.LoadMetrics(ctx, a.Settings, name)
		if err != nil {
			return nil, err
		}
		w.records[name] = rec
		for _, ns := range d.Status.Nodes {
			if _, ok := w.byName[ns.Node]; ok {
				w.apps[ns.Node] = append(w.apps[ns.Node], name)
			}
		}
	}
	return w, nil
}

// nodeResult is what was read from one node.
type nodeResult struct {
	node  string
	found map[string]*nodescript.AppRead
	stats NodeCollectStats
}

// readNodes reads every node at once, each from the positions its apps'
// records say; the channel returned holds every node's result.
func (a *Collector) readNodes(ctx context.Context, w *work) <-chan nodeResult {
	results := make(chan nodeResult, len(w.apps))
	var wg sync.WaitGroup
	for node, list := range w.apps {
		sort.Strings(list)
		positions := map[string]api.LogPosition{}
		for _, app := range list {
			positions[app] = nodeMetrics(w.records[app], node).Log
		}
		n := w.byName[node]
		ex := a.Connector.Executor(n, w.byName[n.Spec.Via])
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			found, out, err := a.readNode(ctx, ex, list, positions)
			results <- nodeResult{node, found, NodeCollectStats{Apps: len(list), Bytes: out, Duration: time.Since(t0), Err: err}}
		}()
	}
	wg.Wait()
	close(results)
	return results
}

// save drops points older than the retention from the changed records
// and stores them, each with its read positions in one write.
func (a *Collector) save(ctx context.Context, records map[string]*api.DeploymentMetrics, changed map[string]bool, now time.Time) error {
	cut := now.Add(-a.retention())
	for app := range changed {
		rec := records[app]
		keep := rec.Nodes[:0]
		for _, nm := range rec.Nodes {
			i := sort.Search(len(nm.Points), func(i int) bool { return nm.Points[i].Minute >= cut.Unix() })
			nm.Points = nm.Points[i:]
			if nm.Collected == nil || nm.Collected.After(cut) {
				keep = append(keep, nm)
			}
		}
		rec.Nodes = keep
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := a.Settings.PutSetting(ctx, store.MetricsSetting(app), b); err != nil {
			return fmt.Errorf("store metrics of %s: %w", app, err)
		}
	}
	return nil
}

// nodeMetrics returns rec's entry for node, adding it when missing.
func nodeMetrics(rec *api.DeploymentMetrics, node string) *api.NodeMetrics {
	for i := range rec.Nodes {
		if rec.Nodes[i].Node == node {
			return &rec.Nodes[i]
		}
	}
	rec.Nodes = append(rec.Nodes, api.NodeMetrics{Node: node})
	sort.Slice(rec.Nodes, func(i, j int) bool { return rec.Nodes[i].Node < rec.Nodes[j].Node })
	return nodeMetrics(rec, node)
}

func (a *Collector) readNode(ctx context.Context, ex sshexec.Executor, apps []string, pos map[string]api.LogPosition) (map[string]*nodescript.AppRead, int64, error) {
	cmd, err := nodescript.Analytics.Command(nodescript.AnalyticsInput{Apps: apps, Positions: pos, MaxBytes: a.MaxBytes, LogDir: a.LogDir, AppsDir: a.AppsDir})
	if err != nil {
		return nil, 0, err
	}
	cmd.Timeout = 60 * time.Second
	res, err := ex.Run(ctx, cmd)
	if err != nil {
		return nil, int64(len(res.Stdout)), fmt.Errorf("%w: %s", err, bytes.TrimSpace(res.Stderr))
	}
	found, err := nodescript.ParseAnalytics(res.Stdout)
	return found, int64(len(res.Stdout)), err
}

// merge counts the complete lines read into nm and advances its log
// position; it returns how many lines it counted.
func merge(ar *nodescript.AppRead, nm *api.NodeMetrics) int64 {
	disk := ar.Disk
	nm.Disk = &disk
	byMinute := map[int64]*api.MetricPoint{}
	for i := range nm.Points {
		byMinute[nm.Points[i].Minute] = &nm.Points[i]
	}
	var lines int64
	for _, b := range ar.Blocks {
		data := b.Data
		end := bytes.LastIndexByte(data, '\n') + 1
		if b.Old && b.RestOfOld && int64(len(data)) == b.WantN {
			end = len(data) // the rotated file is finished: its last line too
		}
		for _, l := range strings.Split(string(data[:end]), "\n") {
			if countLine(l, byMinute) {
				lines++
			}
		}
		nm.Log = api.LogPosition{Inode: b.Inode, Offset: b.Offset + int64(end)}
		if b.Old && b.RestOfOld && int64(len(data)) == b.WantN {
			nm.Log = api.LogPosition{} // the next block (the new file) sets it
		}
	}
	pts := make([]api.MetricPoint, 0, len(byMinute))
	for _, p := range byMinute {
		pts = append(pts, *p)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].Minute < pts[j].Minute })
	nm.Points = pts
	return lines
}

// countLine adds one access log line ("msec|status|bytes|request_time")
// to its minute; it reports whether the line was one.
func countLine(l string, byMinute map[int64]*api.MetricPoint) bool {
	f := strings.Split(strings.TrimSpace(l), "|")
	if len(f) != 4 {
		return false
	}
	msec, e1 := strconv.ParseFloat(f[0], 64)
	status, e2 := strconv.Atoi(f[1])
	nbytes, e3 := strconv.ParseInt(f[2], 10, 64)
	rt, e4 := strconv.ParseFloat(f[3], 64)
	if errors.Join(e1, e2, e3, e4) != nil || status < 100 || status > 599 {
		return false
	}
	minute := int64(msec) / 60 * 60
	p := byMinute[minute]
	if p == nil {
		p = &api.MetricPoint{Minute: minute}
		byMinute[minute] = p
	}
	if len(p.Latency) != len(api.LatencyBounds)+1 {
		h := make([]int64, len(api.LatencyBounds)+1)
		copy(h, p.Latency)
		p.Latency = h
	}
	ms := rt * 1000
	p.Requests++
	p.Status[status/100-1]++
	p.Bytes += nbytes
	p.Latency[api.LatencyBucket(ms)]++
	p.LatencySum += ms
	return true
}
