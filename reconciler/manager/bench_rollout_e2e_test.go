//go:build e2e

package manager

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/scripts/testnodes"
)

// TestE2EBenchRollout is scripts/bench-rollout.sh's measurement, not a
// test: it runs only when BAKERY_BENCH_ROLLOUT_OUT names the file its rows
// go to. For every node count in BAKERY_BENCH_NODES (default "1,3"; counts
// beyond the lab's shared nodes add scratch nodes) and every mode in
// BAKERY_BENCH_MODES ("parallel": the defaults, every node prepares at
// once and the release is built once and shipped (build.on one); "each":
// the same with every node building (build.on each); "serial":
// maxParallel 1, maxUnavailable 1 and build.on each, one node after the
// other as before issue 18) it deploys the example app, pushes a new
// commit and times the push until every node serves it, then sums the
// rollout's recorded steps by kind. BAKERY_BENCH_LOAD=1 keeps requests
// going through every node meanwhile (none may fail).
func TestE2EBenchRollout(t *testing.T) {
	out := os.Getenv("BAKERY_BENCH_ROLLOUT_OUT")
	if out == "" {
		t.Skip("a benchmark: scripts/bench-rollout.sh runs it")
	}
	counts := strings.Split(envOr("BAKERY_BENCH_NODES", "1,3"), ",")
	modes := strings.Split(envOr("BAKERY_BENCH_MODES", "parallel,serial"), ",")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range counts {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			t.Fatalf("BAKERY_BENCH_NODES: %q", c)
		}
		nodes := benchNodes(t, n)
		for _, mode := range modes {
			mode = strings.TrimSpace(mode)
			t.Run(fmt.Sprintf("%s-%d", mode, n), func(t *testing.T) {
				row := benchRollout(t, nodes, mode)
				fmt.Fprintln(f, row)
				t.Log(row)
			})
		}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// benchNodes returns n nodes: the lab's shared ones first, then scratch
// nodes (removed when the test ends).
func benchNodes(t *testing.T, n int) []testnodes.Node {
	lab := testnodes.Require(t)
	nodes := append([]testnodes.Node{}, lab.Nodes[:min(n, len(lab.Nodes))]...)
	for len(nodes) < n {
		nodes = append(nodes, testnodes.Scratch(t))
	}
	return nodes
}

// benchRollout measures one rollout of a new commit to nodes in mode and
// returns its row: mode, nodes, wall ms (push → every node serves it),
// then the summed step ms of fetch, build, install, start, health,
// switch, drain, stop, prune, pack, ship, and the bytes shipped to a node.
func benchRollout(t *testing.T, nodes []testnodes.Node, mode string) string {
	e := startFaults(t, fmt.Sprintf("bench-%s-%d", mode[:1], len(nodes)), nodes, nil)
	c1 := e.commit("v1", map[string]string{"CHANGES": "v1\n"})
	e.deployWith(func(s *api.DeploymentSpec) {
		s.ProgressDeadline = &api.Duration{Duration: 10 * time.Minute}
		// A heavier build than the example's: N MB of incompressible
		// output in the release (BAKERY_BENCH_RELEASE_MB), N ms of CPU
		// (BAKERY_BENCH_BUILD_CPU_MS).
		if mb := envOr("BAKERY_BENCH_RELEASE_MB", "0"); mb != "0" {
			s.Build.Build += fmt.Sprintf(" && head -c %sM /dev/urandom > bench-blob.bin", mb)
		}
		if ms := envOr("BAKERY_BENCH_BUILD_CPU_MS", "0"); ms != "0" {
			s.Build.Build += fmt.Sprintf(" && node -e 'const e=Date.now()+%s; while (Date.now()<e) {}'", ms)
		}
		s.Build.Build = strings.TrimPrefix(s.Build.Build, " && ")
		switch mode {
		case "serial":
			s.Strategy.MaxParallel, s.Strategy.MaxUnavailable = 1, 1
			s.Build.On = api.BuildOnEach
		case "each":
			s.Build.On = api.BuildOnEach
		case "parallel":
			s.Build.On = api.BuildOnOne
		default:
			t.Fatalf("unknown mode %q (parallel, each, serial)", mode)
		}
	})
	e.converge(c1, 10*time.Minute)
	var l *load
	if os.Getenv("BAKERY_BENCH_LOAD") == "1" {
		l = startLoadAs(nodes, e.host)
	}
	start := time.Now()
	c2 := e.push("v2")
	e.converge(c2, 10*time.Minute)
	wall := time.Since(start)
	if l != nil {
		l.check(t, fmt.Sprintf("the %s rollout to %d nodes", mode, len(nodes)))
	}
	ro := e.rolloutOf(c2)
	per := map[string]int64{}
	for _, n := range ro.Nodes {
		for _, s := range n.Steps {
			kind, _, _ := strings.Cut(s.Name, " ")
			per[kind] += s.DurationMillis
		}
	}
	row := fmt.Sprintf("%s\t%d\t%d", mode, len(nodes), wall.Milliseconds())
	for _, k := range []string{"fetch", "build", "install", "start", "health", "switch", "drain", "stop", "prune", "pack", "ship"} {
		row += fmt.Sprintf("\t%d", per[k])
	}
	// Bytes shipped per receiver, from the ship steps' log lines
	// ("shipped 2.6 KiB in 240 ms from node n1 (2662 bytes; …").
	var bytes int64
	for _, l := range e.logText(ro, "shipped ") {
		if _, rest, ok := strings.Cut(l, " ("); ok {
			var b int64
			if _, err := fmt.Sscanf(rest, "%d bytes", &b); err == nil {
				bytes = max(bytes, b)
			}
		}
	}
	return row + fmt.Sprintf("\t%d", bytes)
}
