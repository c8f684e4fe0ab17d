package deployment

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/simnode"
	"bakery.dev/bakery/reconciler/node"
	"bakery.dev/bakery/reconciler/nodeconn"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/source"
	"bakery.dev/bakery/sshexec"
)

// The scale benchmarks run the control plane's real reconcilers (SSH
// pool, observe, plan, status writes to PostgreSQL) against simulated
// nodes: in-process SSH servers (package simnode) in a child process, so
// that this process's CPU time and memory are the control plane's alone
// (PostgreSQL's are not counted either). scripts/bench-scale.sh runs them
// and prints the table.
//
// Sizes come from BAKERY_BENCH_NODES (default "10,100"; the script:
// "10,100,500") and BAKERY_BENCH_DEPLOYMENTS (default 100; the script:
// 1000), small by default so that `make bench` stays quick; workers (the
// reconciles run at once) from BAKERY_BENCH_WORKERS (default 16).

func benchSizes(b *testing.B, env, def string) []int {
	v := os.Getenv(env)
	if v == "" {
		v = def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want positive numbers separated by commas", env, v)
		}
		out = append(out, n)
	}
	return out
}

func benchWorkers() int {
	if n, err := strconv.Atoi(os.Getenv("BAKERY_BENCH_WORKERS")); err == nil && n > 0 {
		return n
	}
	return 16
}

// usage is this process's CPU time and peak resident memory.
type usage struct {
	cpu    time.Duration
	maxRSS int64 // bytes
	// children is the CPU time of finished child processes (git).
	children time.Duration
}

func currentUsage() usage {
	var ru, ch syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ch)
	return usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), maxRSS: ru.Maxrss * 1024,
		children: time.Duration(ch.Utime.Nano() + ch.Stime.Nano())}
}

// rss returns the resident memory now (VmRSS), in bytes.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// benchEnv is a control plane's reconcilers on a fresh database.
type benchEnv struct {
	store *pgstore.Store
	pool  *sshexec.Pool
	conn  nodeconn.SSHConnector
	id    nodeconn.Identity
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	st, err := pgstore.Open(b.Context(), pgtest.DatabaseURL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	id, err := nodeconn.LoadOrCreateIdentity(filepath.Join(b.TempDir(), "ssh"))
	if err != nil {
		b.Fatal(err)
	}
	signer, err := sshexec.ParsePrivateKey(id.PrivatePEM)
	if err != nil {
		b.Fatal(err)
	}
	pool, err := sshexec.NewPool(sshexec.Config{Signer: signer})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pool.Close() })
	return &benchEnv{store: st, pool: pool, conn: nodeconn.SSHConnector{Pool: pool, Local: sshexec.NewLocal()}, id: id}
}

func (e *benchEnv) spawn(b *testing.B, apps []map[string]string) *simnode.Fleet {
	b.Helper()
	f, err := simnode.Spawn(os.Args[0], simnode.Config{Authorized: e.id.AuthorizedKey, Apps: apps})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

func (e *benchEnv) createNodes(b *testing.B, f *simnode.Fleet) []string {
	b.Helper()
	var names []string
	for i, ep := range f.Nodes {
		n := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
			Metadata: api.ObjectMeta{Name: fmt.Sprintf("sim%04d", i)},
			Spec:     api.NodeSpec{Address: "127.0.0.1", Port: ep.Port, HostKey: ep.HostKey}}
		n.Default()
		if _, err := e.store.Create(b.Context(), n); err != nil {
			b.Fatal(err)
		}
		names = append(names, n.Metadata.Name)
	}
	return names
}

// cycle reconciles every name with workers at once and returns the wall
// time; any failed reconcile fails the benchmark.
func cycle(b *testing.B, rec reconciler.Reconciler, kind string, names []string, workers int) time.Duration {
	b.Helper()
	start := time.Now()
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				if _, err := rec.Reconcile(b.Context(), reconciler.Request{Kind: kind, Name: name}); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s/%s: %w", kind, name, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return time.Since(start)
}

// BenchmarkObserveCycle times one observe cycle over every node: each
// node observed in one SSH round trip and its status written. The first
// cycle (outside the timer, reported as cold-ms) dials every node; the
// timed cycles reuse the pool's connections, as a running control plane
// does.
func BenchmarkObserveCycle(b *testing.B) {
	for _, n := range benchSizes(b, "BAKERY_BENCH_NODES", "10,100") {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			e := newBenchEnv(b)
			f := e.spawn(b, make([]map[string]string, n))
			names := e.createNodes(b, f)
			rec := &node.Reconciler{Store: e.store, Connector: e.conn, Resync: time.Minute, DiskLowPercent: -1}
			workers := benchWorkers()
			cold := cycle(b, rec, api.KindNode, names, workers)
			before := currentUsage()
			b.ResetTimer()
			for range b.N {
				cycle(b, rec, api.KindNode, names, workers)
			}
			b.StopTimer()
			after := currentUsage()
			perCycle := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
			b.ReportMetric(float64(perCycle.Microseconds())/1000, "ms/cycle")
			b.ReportMetric(float64((after.cpu-before.cpu).Microseconds())/1000/float64(b.N), "cpu-ms/cycle")
			b.ReportMetric(float64(rss())/(1<<20), "rss-MB")
			b.ReportMetric(float64(after.maxRSS)/(1<<20), "maxrss-MB")
			b.ReportMetric(0, "ns/op")
			for _, name := range names[:1] {
				o, _ := e.store.Get(b.Context(), api.KindNode, name)
				if !o.(*api.Node).Status.Reachable {
					b.Fatalf("%s not reachable: %+v", name, o.(*api.Node).Status)
				}
			}
		})
	}
}

// convergedApp returns what a node on which d runs converged prints for
// the app observe script, and the states of the apps for "other" lines.
func convergedApp(d *api.Deployment, commit string, port int) (lines, state string) {
	sh, bh := specHash(&d.Spec), buildHash(&d.Spec)
	rel := nf.ReleaseID(commit, bh)
	st := &nf.AppState{App: d.Metadata.Name, Active: nf.Blue, Revision: 1,
		Slots: map[string]nf.SlotState{nf.Blue: {Commit: commit, Release: rel, Port: port, Revision: 1, SpecHash: sh}}}
	state = strings.ReplaceAll(string(st.Marshal()), "\n", "")
	site := nginxIngress{}.Hash(&nodeRun{app: d.Metadata.Name, spec: &d.Spec}, nf.Blue, port)
	lines = fmt.Sprintf("state %s\nunit blue active\nunit green inactive\nsite %s\nrelease %s %s\nhave %s\nlisten %d\n",
		state, site, rel, bh, commit, port)
	return lines, state
}

// BenchmarkReconcileConverged measures the reconcile throughput of
// converged deployments (BAKERY_BENCH_DEPLOYMENTS), ten per
// simulated node: resolve the source (a git fetch of the mirror), select
// nodes, observe each in one round trip, plan nothing, write status.
func BenchmarkReconcileConverged(b *testing.B) {
	for _, n := range benchSizes(b, "BAKERY_BENCH_DEPLOYMENTS", "100") {
		b.Run(fmt.Sprintf("deployments=%d", n), func(b *testing.B) {
			e := newBenchEnv(b)
			repo := filepath.Join(b.TempDir(), "repo")
			for _, args := range [][]string{{"init", "-q", "-b", "main", repo},
				{"-C", repo, "-c", "user.name=b", "-c", "user.email=b@example.test", "commit", "-q", "--allow-empty", "-m", "v1"}} {
				if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
					b.Fatalf("git %v: %v\n%s", args, err, out)
				}
			}
			out, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
			if err != nil {
				b.Fatal(err)
			}
			commit := strings.TrimSpace(string(out))
			const perNode = 10
			nodes := (n + perNode - 1) / perNode
			apps := make([]map[string]string, nodes)
			states := make([][]string, nodes)
			var deps []*api.Deployment
			for i := range n {
				d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment},
					Metadata: api.ObjectMeta{Name: fmt.Sprintf("app%04d", i)},
					Spec: api.DeploymentSpec{Source: api.Source{Repo: repo, Ref: "main"}, Nodes: []string{fmt.Sprintf("sim%04d", i/perNode)},
						Run: api.Run{Command: "./server"}}}
				d.Default()
				lines, state := convergedApp(d, commit, 20000+2*(i%perNode))
				if apps[i/perNode] == nil {
					apps[i/perNode] = map[string]string{}
				}
				apps[i/perNode][d.Metadata.Name] = lines
				states[i/perNode] = append(states[i/perNode], state)
				deps = append(deps, d)
			}
			// Every app's observation also lists the node's other apps.
			for ni, m := range apps {
				for app, lines := range m {
					var b strings.Builder
					b.WriteString(lines)
					for _, s := range states[ni] {
						if !strings.Contains(s, `"app":"`+app+`"`) {
							b.WriteString("other " + s + "\n")
						}
					}
					m[app] = b.String()
				}
			}
			f := e.spawn(b, apps)
			e.createNodes(b, f)
			var names []string
			for _, d := range deps {
				if _, err := e.store.Create(b.Context(), d); err != nil {
					b.Fatal(err)
				}
				names = append(names, d.Metadata.Name)
			}
			rec := &Reconciler{Store: e.store, Connector: e.conn, Resync: time.Minute,
				Mirrors: &source.Mirrors{Dir: filepath.Join(b.TempDir(), "mirrors")}}
			workers := benchWorkers()
			cold := cycle(b, rec, api.KindDeployment, names, workers)
			// Converged: nothing was rolled out.
			for _, name := range names[:1] {
				if ros, _ := e.store.ListRollouts(b.Context(), name, 0); len(ros) != 0 {
					b.Fatalf("%s was rolled out: not converged on the simulated node", name)
				}
				o, _ := e.store.Get(b.Context(), api.KindDeployment, name)
				if d := o.(*api.Deployment); !api.IsTrue(d.Status.Conditions, api.ConditionReady) {
					b.Fatalf("%s not ready: %+v", name, d.Status)
				}
			}
			before := currentUsage()
			b.ResetTimer()
			for range b.N {
				cycle(b, rec, api.KindDeployment, names, workers)
			}
			b.StopTimer()
			after := currentUsage()
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/cycle")
			b.ReportMetric(float64(n)/per.Seconds(), "reconciles/s")
			b.ReportMetric(float64((after.cpu-before.cpu).Microseconds())/1000/float64(b.N)/float64(n), "cpu-ms/reconcile")
			b.ReportMetric(float64((after.children-before.children).Microseconds())/1000/float64(b.N)/float64(n), "git-cpu-ms/reconcile")
			b.ReportMetric(float64(rss())/(1<<20), "rss-MB")
			b.ReportMetric(float64(after.maxRSS)/(1<<20), "maxrss-MB")
			b.ReportMetric(0, "ns/op")
		})
	}
}
