package deployment

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/reconciler/internal/controller"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/internal/simnode"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/node"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/source"
	"bakery.dev/bakery/sshexec"
)

// zeroEnv is a control plane's Node and Deployment controllers on
// PostgreSQL (with the coordinator of a cluster: reconcile keys and port
// bookings in the database), against simulated nodes on which every
// deployment is converged, with short resyncs.
type zeroEnv struct {
	store  Store
	writes func() map[string]int // rows (PostgreSQL) or objects and events (file store) written since the last call
	nodes  []*simnode.Node
	deps   []string
}

// fileWrites counts what a file store writes: objects by their change
// events (a status write is one), kept events by the recorder.
type fileWrites struct {
	mu     sync.Mutex
	counts map[string]int
}

func (f *fileWrites) add(what string) {
	f.mu.Lock()
	f.counts[what]++
	f.mu.Unlock()
}

func (f *fileWrites) take() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.counts
	f.counts = map[string]int{}
	return out
}

const zeroResync = 200 * time.Millisecond

func newZeroEnv(t *testing.T, postgres bool, nNodes, perNode int) *zeroEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var st Store
	var locker store.Locker = store.NopLocker{}
	var ports store.PortBook
	var coord *pgstore.Coordinator
	var url string
	if postgres {
		url = pgtest.DatabaseURL(t)
		pg, err := pgstore.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		// The coordinator records the holder of a resync that lasts
		// longer than a whole Interval (default 2s; a converged one takes
		// milliseconds): long here, so that a loaded test machine cannot
		// make a converged resync look long.
		coord, err = pgstore.NewCoordinator(ctx, pg, "zero-test", pgstore.CoordinatorOptions{Interval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		st, locker, ports = pg, coord, coord
	} else {
		fs, err := filestore.Open(t.TempDir(), filestore.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		st = fs
	}
	id, err := nodeconn.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sshexec.ParsePrivateKey(id.PrivatePEM)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sshexec.NewPool(sshexec.Config{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	conn := nodeconn.SSHConnector{Pool: pool}

	repo := filepath.Join(t.TempDir(), "repo")
	for _, args := range [][]string{{"init", "-q", "-b", "main", repo},
		{"-C", repo, "-c", "user.name=b", "-c", "user.email=b@example.test", "commit", "-q", "--allow-empty", "-m", "v1"}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	out, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(out))

	e := &zeroEnv{store: st}
	apps := make([]map[string]string, nNodes)
	states := make([][]string, nNodes)
	var deps []*api.Deployment
	for i := range nNodes * perNode {
		ni := i / perNode
		d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment},
			Metadata: api.ObjectMeta{Name: fmt.Sprintf("app%02d", i)},
			Spec: api.DeploymentSpec{Source: api.Source{Repo: repo, Ref: "main"}, Nodes: []string{fmt.Sprintf("sim%02d", ni)},
				Run: api.Run{Command: "./server"}}}
		d.Default()
		lines, state := convergedApp(d, commit, 20000+2*(i%perNode))
		if apps[ni] == nil {
			apps[ni] = map[string]string{}
		}
		apps[ni][d.Metadata.Name] = lines
		states[ni] = append(states[ni], state)
		deps = append(deps, d)
	}
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
		sn, err := simnode.Start(id.AuthorizedKey)
		if err != nil {
			t.Fatal(err)
		}
		sn.SetApps(m)
		e.nodes = append(e.nodes, sn)
		n := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
			Metadata: api.ObjectMeta{Name: fmt.Sprintf("sim%02d", ni)},
			Spec:     api.NodeSpec{Address: "127.0.0.1", Port: sn.Port(), HostKey: sn.HostKey}}
		n.Default()
		if _, err := st.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range deps {
		if _, err := st.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		e.deps = append(e.deps, d.Metadata.Name)
	}

	rec := events.NewRecorder(st, nil, nil)
	nodes := &node.Reconciler{Store: st, Connector: conn, Resync: zeroResync, Events: rec}
	depl := &Reconciler{Store: st, Connector: conn, Resync: zeroResync, Events: rec, Ports: ports, ServerID: "zero-test",
		Mirrors: &source.Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors")}}
	opts := func(kind string) controller.Options {
		return controller.Options{Kind: kind, Workers: 4, Resync: zeroResync, BaseBackoff: 50 * time.Millisecond,
			MaxBackoff: zeroResync, Locker: locker, LockRetry: 50 * time.Millisecond}
	}
	if postgres {
		w := pgtest.CountWrites(t, url)
		e.writes = func() map[string]int { return w.Take(t) }
	} else {
		fw := &fileWrites{counts: map[string]int{}}
		e.writes = fw.take
		rec.Sent = func(*api.Event) { fw.add("events") }
		ch, err := st.Watch(ctx, store.WatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for ev := range ch {
				fw.add("objects/" + ev.Object.GetTypeMeta().Kind)
			}
		}()
	}
	done := make(chan struct{})
	ctls := []*controller.Controller{controller.New(st, nodes, opts(api.KindNode)), controller.New(st, depl, opts(api.KindDeployment))}
	go func() {
		defer close(done)
		if coord != nil {
			go coord.Run(ctx)
		}
		ch := make(chan struct{}, len(ctls))
		for _, c := range ctls {
			go func() { c.Run(ctx); ch <- struct{}{} }()
		}
		for range ctls {
			<-ch
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		pool.Close()
		for _, n := range e.nodes {
			n.Close()
		}
		if c, ok := st.(interface{ Close() error }); ok {
			c.Close()
		}
	})
	return e
}

// converged waits until every node and deployment is Ready.
func (e *zeroEnv) converged(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, "every node and deployment Ready", func() bool {
		for i := range e.nodes {
			o, err := e.store.Get(context.Background(), api.KindNode, fmt.Sprintf("sim%02d", i))
			if err != nil || !api.IsTrue(o.(*api.Node).Status.Conditions, api.ConditionReady) {
				return false
			}
		}
		for _, name := range e.deps {
			o, err := e.store.Get(context.Background(), api.KindDeployment, name)
			if err != nil || !api.IsTrue(o.(*api.Deployment).Status.Conditions, api.ConditionReady) {
				return false
			}
		}
		return true
	})
}

// resyncs waits until every simulated node answered n more observe
// commands per object placed on it (its own and its apps'): n resyncs.
func (e *zeroEnv) resyncs(t *testing.T, n int, perNode int) {
	t.Helper()
	want := make([]int64, len(e.nodes))
	for i, sn := range e.nodes {
		want[i] = sn.Commands.Load() + int64(n*(1+perNode))
	}
	testenv.Eventually(t, fmt.Sprintf("%d resyncs", n), func() bool {
		for i, sn := range e.nodes {
			if sn.Commands.Load() < want[i] {
				return false
			}
		}
		return true
	})
}

// TestConvergedResyncWritesNothing: once every Node and Deployment is
// converged, resyncs write no row to any table (objects per kind,
// events, events_log, reconcile_keys, port_bookings, settings,
// rollouts, …) on PostgreSQL, and no object or event on the file store.
func TestConvergedResyncWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		postgres bool
	}{{"postgres", true}, {"file", false}} {
		t.Run(tc.name, func(t *testing.T) {
			const nNodes, perNode = 3, 3
			e := newZeroEnv(t, tc.postgres, nNodes, perNode)
			e.converged(t)
			// Two more rounds, so that anything the first reconciles left
			// to do is done.
			e.resyncs(t, 2, perNode)
			t.Logf("converging wrote: %s", pgtest.Format(e.writes()))
			e.resyncs(t, 5, perNode)
			got := e.writes()
			t.Logf("5 converged resyncs wrote: %s", pgtest.Format(got))
			if len(got) != 0 {
				t.Errorf("converged resyncs wrote: %s", pgtest.Format(got))
			}

			// A visible change is written at once: a node that stops
			// answering turns Reachable=False, with a NodeUnreachable
			// event.
			e.nodes[0].Close()
			events := "events" // the file store's kept events
			if tc.postgres {
				events = "events_log"
			}
			got = map[string]int{}
			testenv.Eventually(t, "sim00's status and event written", func() bool {
				for k, n := range e.writes() {
					got[k] += n
				}
				return got["objects/Node"] > 0 && got[events] > 0
			})
			t.Logf("a node going down wrote: %s", pgtest.Format(got))
			if o, err := e.store.Get(context.Background(), api.KindNode, "sim00"); err != nil || o.(*api.Node).Status.Reachable {
				t.Errorf("sim00 still reachable: %v", err)
			}
		})
	}
}
