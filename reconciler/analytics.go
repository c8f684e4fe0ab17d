package reconciler

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

// Analytics collects traffic and disk metrics of deployments from their
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
type Analytics struct {
	Store     store.Store
	Settings  store.Settings
	Connector Connector
	Locker    Locker
	Logger    *slog.Logger
	// Interval between collections (default 60s); Retention of points
	// (default 24h).
	Interval, Retention time.Duration
	// MaxBytes bounds what is read of one app's log per cycle (default
	// 8 MiB); the rest is read in the next cycles.
	MaxBytes int64
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

func (a *Analytics) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

func (a *Analytics) interval() time.Duration {
	if a.Interval > 0 {
		return a.Interval
	}
	return time.Minute
}

func (a *Analytics) retention() time.Duration {
	if a.Retention > 0 {
		return a.Retention
	}
	return 24 * time.Hour
}

// Run collects every Interval until ctx ends.
func (a *Analytics) Run(ctx context.Context) {
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
func (a *Analytics) Collect(ctx context.Context) (stats CollectStats, err error) {
	stats = CollectStats{Nodes: map[string]NodeCollectStats{}}
	locker := a.Locker
	if locker == nil {
		locker = NopLocker{}
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
	deps, err := a.Store.List(ctx, api.KindDeployment, store.ListOptions{})
	if err != nil {
		return stats, err
	}
	nodes, err := a.Store.List(ctx, api.KindNode, store.ListOptions{})
	if err != nil {
		return stats, err
	}
	byName := map[string]*api.Node{}
	for _, o := range nodes {
		byName[o.GetObjectMeta().Name] = o.(*api.Node)
	}
	records := map[string]*api.DeploymentMetrics{}
	apps := map[string][]string{} // node → apps on it
	for _, o := range deps {
		d := o.(*api.Deployment)
		name := d.Metadata.Name
		rec, err := store.LoadMetrics(ctx, a.Settings, name)
		if err != nil {
			return stats, err
		}
		records[name] = rec
		for _, ns := range d.Status.Nodes {
			if _, ok := byName[ns.Node]; ok {
				apps[ns.Node] = append(apps[ns.Node], name)
			}
		}
	}
	type nodeResult struct {
		node  string
		found map[string]*appRead
		stats NodeCollectStats
	}
	results := make(chan nodeResult, len(apps))
	var wg sync.WaitGroup
	for node, list := range apps {
		sort.Strings(list)
		positions := map[string]api.LogPosition{}
		for _, app := range list {
			positions[app] = nodeMetrics(records[app], node).Log
		}
		n := byName[node]
		ex := a.Connector.Executor(n, byName[n.Spec.Via])
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
	now := time.Now()
	changed := map[string]bool{}
	for r := range results {
		if r.stats.Err == nil {
			for app, ar := range r.found {
				nm := nodeMetrics(records[app], r.node)
				r.stats.Lines += ar.merge(nm)
				nm.Collected = api.NewTime(now)
				changed[app] = true
			}
		}
		stats.Nodes[r.node] = r.stats
	}
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
			return stats, err
		}
		if err := a.Settings.PutSetting(ctx, store.MetricsSetting(app), b); err != nil {
			return stats, fmt.Errorf("store metrics of %s: %w", app, err)
		}
	}
	return stats, nil
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

// analyticsScript prints, per app of $LOGS ("app:inode:offset …"), what
// its access log gained since the position: "@app APP", then for a log
// rotated since the last read "@old INODE SIZE OFFSET N" and N bytes of
// the rotated file (.1), then — unless the rotated file has more than MAX
// bytes left — "@file INODE SIZE OFFSET N" and N bytes of the current
// file, then "@disk RELEASES REPO LOG IMAGES" (bytes; IMAGES, for a
// dockerized app, sums its images' sizes, layers they share counted once
// per image). Each data block is
// followed by a newline.
const analyticsScript = `set -u
for spec in $LOGS; do
  app=${spec%%:*}; rest=${spec#*:}; ino=${rest%%:*}; off=${rest#*:}
  f=$LOGDIR/bakery-$app.access
  echo "@app $app"
  more=1
  if [ "$ino" != 0 ] && [ -f "$f.1" ] && [ "$(stat -c %i "$f.1")" = "$ino" ]; then
    sz=$(stat -c %s "$f.1")
    [ "$sz" -ge "$off" ] || off=$sz
    n=$((sz - off)); if [ "$n" -gt "$MAX" ]; then n=$MAX; more=0; fi
    echo "@old $ino $sz $off $n"
    tail -c +$((off + 1)) "$f.1" | head -c "$n"; echo
    off=0; ino=0
  fi
  if [ "$more" = 1 ] && [ -f "$f" ]; then
    set -- $(stat -c '%i %s' "$f")
    if [ "$1" != "$ino" ] || [ "$2" -lt "$off" ]; then off=0; fi
    n=$(($2 - off)); if [ "$n" -gt "$MAX" ]; then n=$MAX; fi
    echo "@file $1 $2 $off $n"
    tail -c +$((off + 1)) "$f" | head -c "$n"; echo
  fi
  r=$(du -sb "$APPS/$app/releases" 2>/dev/null | cut -f1)
  g=$(du -sb "$APPS/$app/repo.git" 2>/dev/null | cut -f1)
  l=$(stat -c %s "$f" 2>/dev/null || echo 0)
  i=0
  if grep -qs '"dockerized": true' "$APPS/$app/state.json"; then
    ids=$(docker image ls -q "bakery/$app" 2>/dev/null | sort -u)
    if [ -n "$ids" ]; then
      i=$(docker image inspect --format '{{.Size}}' $ids 2>/dev/null | awk '{s += $1} END {printf "%d", s}')
    fi
  fi
  echo "@disk ${r:-0} ${g:-0} ${l:-0} ${i:-0}"
done
`

// appRead is what one read of an app's log found.
type appRead struct {
	blocks []logBlock
	disk   api.AppDisk
}

type logBlock struct {
	old            bool
	inode          uint64
	size, offset   int64
	data           []byte
	wantN          int64
	restOfOldSized bool // old: the whole rest of the rotated file was read
}

func (a *Analytics) readNode(ctx context.Context, ex sshexec.Executor, apps []string, pos map[string]api.LogPosition) (map[string]*appRead, int64, error) {
	specs := make([]string, len(apps))
	for i, app := range apps {
		if api.ValidateName(app) != "" {
			return nil, 0, fmt.Errorf("bad app name %q", app)
		}
		p := pos[app]
		specs[i] = fmt.Sprintf("%s:%d:%d", app, p.Inode, p.Offset)
	}
	maxBytes := a.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 8 << 20
	}
	logDir, appsDir := a.LogDir, a.AppsDir
	if logDir == "" {
		logDir = nf.AccessLogDir
	}
	if appsDir == "" {
		appsDir = nf.Root + "/apps"
	}
	res, err := ex.Run(ctx, sshexec.Command{Script: analyticsScript, Timeout: 60 * time.Second,
		Env: map[string]string{"LOGS": strings.Join(specs, " "), "MAX": strconv.FormatInt(maxBytes, 10), "LOGDIR": logDir, "APPS": appsDir}})
	if err != nil {
		return nil, int64(len(res.Stdout)), fmt.Errorf("%w: %s", err, bytes.TrimSpace(res.Stderr))
	}
	found, err := parseAnalytics(res.Stdout)
	return found, int64(len(res.Stdout)), err
}

func parseAnalytics(out []byte) (map[string]*appRead, error) {
	found := map[string]*appRead{}
	r := bufio.NewReader(bytes.NewReader(out))
	var cur *appRead
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return found, nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "@app":
			if len(f) != 2 {
				return nil, fmt.Errorf("analytics: bad line %q", line)
			}
			cur = &appRead{}
			found[f[1]] = cur
		case "@old", "@file":
			if cur == nil || len(f) != 5 {
				return nil, fmt.Errorf("analytics: bad line %q", line)
			}
			ino, e1 := strconv.ParseUint(f[1], 10, 64)
			size, e2 := strconv.ParseInt(f[2], 10, 64)
			off, e3 := strconv.ParseInt(f[3], 10, 64)
			n, e4 := strconv.ParseInt(f[4], 10, 64)
			if err := errors.Join(e1, e2, e3, e4); err != nil || n < 0 || off < 0 || size < 0 {
				return nil, fmt.Errorf("analytics: bad line %q", line)
			}
			// n comes from the node: never allocate more than the output
			// holds (a lying count is a short read below).
			data := make([]byte, min(n, int64(len(out))))
			got, _ := io.ReadFull(r, data)
			// The data is followed by a newline; a short read means the
			// file shrank while being read: use what came.
			data = data[:got]
			if got == int(n) {
				if b, err := r.ReadByte(); err != nil || b != '\n' {
					return nil, errors.New("analytics: data block not followed by a newline")
				}
			}
			cur.blocks = append(cur.blocks, logBlock{old: f[0] == "@old", inode: ino, size: size, offset: off, data: data, wantN: n,
				restOfOldSized: f[0] == "@old" && off+n == size})
		case "@disk":
			if cur == nil || len(f) != 5 {
				return nil, fmt.Errorf("analytics: bad line %q", line)
			}
			cur.disk.Releases, _ = strconv.ParseInt(f[1], 10, 64)
			cur.disk.Repo, _ = strconv.ParseInt(f[2], 10, 64)
			cur.disk.AccessLog, _ = strconv.ParseInt(f[3], 10, 64)
			cur.disk.Images, _ = strconv.ParseInt(f[4], 10, 64)
		default:
			return nil, fmt.Errorf("analytics: unexpected line %q", line)
		}
	}
}

// merge counts the complete lines read into nm and advances its log
// position; it returns how many lines it counted.
func (ar *appRead) merge(nm *api.NodeMetrics) int64 {
	disk := ar.disk
	nm.Disk = &disk
	byMinute := map[int64]*api.MetricPoint{}
	for i := range nm.Points {
		byMinute[nm.Points[i].Minute] = &nm.Points[i]
	}
	var lines int64
	for _, b := range ar.blocks {
		data := b.data
		end := bytes.LastIndexByte(data, '\n') + 1
		if b.old && b.restOfOldSized && int64(len(data)) == b.wantN {
			end = len(data) // the rotated file is finished: its last line too
		}
		for _, l := range strings.Split(string(data[:end]), "\n") {
			if countLine(l, byMinute) {
				lines++
			}
		}
		nm.Log = api.LogPosition{Inode: b.inode, Offset: b.offset + int64(end)}
		if b.old && b.restOfOldSized && int64(len(data)) == b.wantN {
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
