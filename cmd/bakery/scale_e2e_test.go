//go:build e2e

package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/scripts/testnodes"
)

// haCluster is several `bakery server` processes on one database.
type haCluster struct {
	t       *testing.T
	bin     string
	env     []string
	dbURL   string
	token   string
	servers []*e2eServer
	ids     []string // server id of each, from GET /api/v1/leases
}

func (c *haCluster) start(i int) {
	t := c.t
	t.Helper()
	data := filepath.Join(t.TempDir(), fmt.Sprintf("data%d", i))
	s := startServerArgs(t, c.bin, c.env, "--data", data, "--database-url", c.dbURL,
		"--resync", "3s", "--takeover-interval", "300ms", "--log-level", "info")
	if c.token == "" {
		b, err := os.ReadFile(filepath.Join(data, "admin-token"))
		if err != nil {
			t.Fatalf("the first server wrote no admin token: %v", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	var ls api.Leases
	c.getJSON(s, "/api/v1/leases", &ls)
	if ls.Server == "" {
		t.Fatalf("server %d has no id in /api/v1/leases", i)
	}
	for len(c.servers) <= i {
		c.servers = append(c.servers, nil)
		c.ids = append(c.ids, "")
	}
	c.servers[i], c.ids[i] = s, ls.Server
}

func (c *haCluster) getJSON(s *e2eServer, path string, out any) {
	c.t.Helper()
	body := httpGetJSON(c.t, s.url+path, c.token)
	if err := json.Unmarshal([]byte(body), out); err != nil {
		c.t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func (c *haCluster) cli(s *e2eServer, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(c.env, "BAKERY_SERVER="+s.url, "BAKERY_TOKEN="+c.token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("bakery %s: %v\n%s\n%s", strings.Join(args, " "), err, out, c.serverLogs())
	}
	return string(out)
}

func (c *haCluster) serverLogs() string {
	var b strings.Builder
	for i, s := range c.servers {
		if s == nil {
			continue
		}
		fmt.Fprintf(&b, "--- server %d (%s):\n", i, c.ids[i])
		for _, l := range strings.Split(s.logs.String(), "\n") {
			if !strings.Contains(l, "http request") {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
}

func (c *haCluster) deployment(s *e2eServer, name string) *api.Deployment {
	var d api.Deployment
	c.getJSON(s, "/api/v1/deployments/"+name, &d)
	return &d
}

func (c *haCluster) rollouts(s *e2eServer, name string) []*api.Rollout {
	var out struct {
		Items []*api.Rollout `json:"items"`
	}
	c.getJSON(s, "/api/v1/deployments/"+name+"/rollouts", &out)
	return out.Items
}

// converged reports whether every named deployment has processed its
// generation, at commit, Ready, with no rollout running.
func (c *haCluster) waitConverged(s *e2eServer, names []string, commits map[string]string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pending []string
		for _, n := range names {
			d := c.deployment(s, n)
			ok := d.Status.ObservedGeneration == d.Metadata.Generation && d.Status.Commit == commits[n] &&
				api.IsTrue(d.Status.Conditions, api.ConditionReady) &&
				!api.IsTrue(d.Status.Conditions, api.ConditionProgressing) &&
				(d.Status.CurrentRollout == nil || d.Status.CurrentRollout.State != api.RolloutRunning)
			if !ok {
				pending = append(pending, n)
			}
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			d := c.deployment(s, pending[0])
			b, _ := json.MarshalIndent(d.Status, "", "  ")
			c.t.Fatalf("not converged within %s: %v; %s status:\n%s\n%s", timeout, pending, pending[0], b, c.serverLogs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestE2EHAScale runs two `bakery server` processes on one PostgreSQL
// against real nodes. (1) 20 deployments: every rollout runs exactly once
// (builds counted on the nodes) and both servers run some. (2) The server
// holding a three-node rollout in flight is killed with SIGKILL after the
// first node switched: the other takes the key over, continues from what
// the nodes say (the finished node is not built or switched again) and no
// node is left with two active slots or a broken nginx config. (3) With
// the killed server restarted, PostgreSQL is restarted while rollouts run:
// both servers reconnect and everything converges, each deployment ending
// with exactly one succeeded rollout of its new spec and none running.
func TestE2EHAScale(t *testing.T) {
	testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 3)
	home := isolate(t)
	tmp := t.TempDir()
	bin := buildBakery(t, tmp)
	const prefix = "ha-"
	cleanNodes := func() {
		for _, n := range nodes {
			testnodes.Exec(t, n.Name, `for u in $(systemctl list-units --all --plain --no-legend 'bakery-`+prefix+`*' | awk '{print $1}'); do systemctl stop "$u"; done
rm -f /etc/systemd/system/bakery-`+prefix+`*; systemctl daemon-reload
rm -f /etc/nginx/conf.d/bakery-`+prefix+`*; nginx -s reload
rm -rf /var/lib/bakery/apps/`+prefix+`* /var/tmp/bakery-ha; sed -i '/bakery-ha-test/d' ~bakery-agent/.ssh/authorized_keys; true`)
		}
	}
	cleanNodes()
	t.Cleanup(cleanNodes)

	key := make([]byte, 32)
	rand.Read(key)
	c := &haCluster{t: t, bin: bin, dbURL: pgtest.DatabaseURL(t),
		env: append(os.Environ(), "XDG_CONFIG_HOME="+home, "DATABASE_URL=", "BAKERY_SERVER=", "BAKERY_TOKEN=",
			"BAKERY_ENCRYPTION_KEY="+base64.StdEncoding.EncodeToString(key))}
	c.start(0)
	c.start(1)
	if c.ids[0] == c.ids[1] {
		t.Fatalf("both servers have id %s", c.ids[0])
	}
	var ls api.Leases
	c.getJSON(c.servers[1], "/api/v1/leases", &ls)
	if len(ls.Servers) != 2 {
		t.Fatalf("leases lists %d servers, want 2: %+v", len(ls.Servers), ls)
	}
	var manifest strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&manifest, "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: %s}\nspec: {address: %s, hostKey: %q}\n---\n", n.Name, n.Address, n.HostKey)
	}
	mf := filepath.Join(tmp, "all.yaml")
	os.WriteFile(mf, []byte(manifest.String()), 0o644)
	c.cli(c.servers[0], "apply", "-f", mf)
	// The nodes trust the key pair the servers share (minted in the
	// database by the first).
	var boot struct {
		PublicKey string `json:"publicKey"`
	}
	c.getJSON(c.servers[1], "/api/v1/nodes/"+nodes[0].Name+"/bootstrap", &boot)
	if !strings.HasPrefix(boot.PublicKey, "ssh-ed25519 ") {
		t.Fatalf("public key %q", boot.PublicKey)
	}
	for _, n := range nodes {
		testnodes.Exec(t, n.Name, fmt.Sprintf("mkdir -p /var/tmp/bakery-ha && chmod 1777 /var/tmp/bakery-ha && echo %s >> ~bakery-agent/.ssh/authorized_keys",
			shellQuoteTest(strings.Fields(boot.PublicKey)[0]+" "+strings.Fields(boot.PublicKey)[1]+" bakery-ha-test")))
	}
	for _, n := range nodes {
		c.cli(c.servers[1], "node", "verify", n.Name)
	}

	// Two repositories of a tiny static site served by busybox httpd.
	newRepo := func(name string) (string, func(msg string) string) {
		dir := filepath.Join(tmp, name)
		os.MkdirAll(dir, 0o755)
		git := gitIn(t, dir)
		git("init", "-q", "-b", "main")
		commit := func(msg string) string {
			os.WriteFile(filepath.Join(dir, "VERSION"), []byte(msg+"\n"), 0o644)
			git("add", ".")
			git("commit", "-q", "-m", msg)
			return git("rev-parse", "HEAD")
		}
		return dir, commit
	}
	smallRepo, smallCommit := newRepo("small")
	s1 := smallCommit("v1")
	killRepo, killCommit := newRepo("kill")
	k1 := killCommit("v1")

	var names []string
	commits := map[string]string{}
	// build appends a line per build to a file on the node: the count of
	// rollouts that reached this node (build.on each: every node builds,
	// so that the count is per node).
	deployment := func(name, repo, nodeList, env, sleep string) string {
		return fmt.Sprintf(`apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  source: {repo: %[2]s, ref: main}
  nodes: [%[3]s]
  build: {on: each, build: '%[5]secho ok > index.html && cat VERSION >> /var/tmp/bakery-ha/%[1]s.builds'}
  run: {command: 'exec busybox httpd -f -p 127.0.0.1:$PORT -h .', env: [{name: V, value: "%[4]s"}]}
  healthCheck: {path: /, interval: 100ms, retries: 50}
  strategy: {drain: 300ms}
---
`, name, repo, nodeList, env, sleep)
	}
	small := func(env string) string {
		var b strings.Builder
		for i := range 19 {
			b.WriteString(deployment(fmt.Sprintf("%ss%02d", prefix, i), smallRepo, nodes[i%3].Name, env, ""))
		}
		return b.String()
	}
	for i := range 19 {
		n := fmt.Sprintf("%ss%02d", prefix, i)
		names = append(names, n)
		commits[n] = s1
	}
	killName := prefix + "kill"
	names = append(names, killName)
	commits[killName] = k1
	killDep := deployment(killName, killRepo, nodes[0].Name+", "+nodes[1].Name+", "+nodes[2].Name, "1", "sleep 1; ")
	os.WriteFile(mf, []byte(manifest.String()+small("1")+killDep), 0o644)

	// (1) 20 deployments, applied through server 0.
	start := time.Now()
	c.cli(c.servers[0], "apply", "-f", mf)
	c.waitConverged(c.servers[1], names, commits, 3*time.Minute)
	t.Logf("20 deployments rolled out by 2 servers in %s", time.Since(start).Round(time.Millisecond))
	builds := func(node testnodes.Node) map[string]string {
		out, err := testnodes.Exec(t, node.Name, `cd /var/tmp/bakery-ha && for f in *.builds; do [ -e "$f" ] && printf '%s=%s\n' "${f%.builds}" "$(tr '\n' ' ' < "$f")"; done; true`)
		if err != nil {
			t.Fatalf("count builds on %s: %v\n%s", node.Name, err, out)
		}
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				m[k] = strings.TrimSpace(v)
			}
		}
		return m
	}
	ranBy := map[string]int{}
	for i, n := range nodes {
		b := builds(n)
		for j := range 19 {
			if j%3 != i {
				continue
			}
			app := fmt.Sprintf("%ss%02d", prefix, j)
			if b[app] != "v1" {
				t.Errorf("%s on %s built %q, want once (v1)", app, n.Name, b[app])
			}
		}
		if b[killName] != "v1" {
			t.Errorf("%s on %s built %q, want once (v1)", killName, n.Name, b[killName])
		}
	}
	for _, name := range names {
		ros := c.rollouts(c.servers[0], name)
		if len(ros) != 1 || ros[0].State != api.RolloutSucceeded {
			t.Errorf("%s: %d rollouts, want exactly one, succeeded: %+v", name, len(ros), ros)
			continue
		}
		ranBy[ros[0].Server]++
	}
	t.Logf("rollouts per server: %v", ranBy)
	if len(ranBy) != 2 || ranBy[c.ids[0]] == 0 || ranBy[c.ids[1]] == 0 {
		t.Errorf("both servers should run rollouts: %v (servers %v)", ranBy, c.ids)
	}
	if t.Failed() {
		t.FailNow()
	}

	// (2) A new commit of the three-node deployment; kill its owner once
	// the first node has switched.
	k2 := killCommit("v2")
	commits[killName] = k2
	c.cli(c.servers[1], "deploy", killName)
	var victim int
	var interrupted *api.Rollout
	deadline := time.Now().Add(2 * time.Minute)
	for interrupted == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the rollout of %s never got past its first node\n%s", killName, c.serverLogs())
		}
		time.Sleep(50 * time.Millisecond)
		d := c.deployment(c.servers[0], killName)
		cur := d.Status.CurrentRollout
		if cur == nil || cur.State != api.RolloutRunning {
			continue
		}
		var ro api.Rollout
		c.getJSON(c.servers[0], "/api/v1/rollouts/"+cur.ID, &ro)
		if ro.Commit != k2 || len(ro.Nodes) != 3 || ro.Nodes[0].State != api.RolloutSucceeded {
			continue
		}
		for i, id := range c.ids {
			if id == ro.Server {
				victim, interrupted = i, &ro
			}
		}
		if interrupted == nil {
			t.Fatalf("rollout %s ran by %q, not one of %v", ro.ID, ro.Server, c.ids)
		}
	}
	survivor := c.servers[1-victim]
	// Its log streams from the other server's SSE endpoint (through the
	// database), until the rollout ends.
	sseDone := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", survivor.url+"/api/v1/rollouts/"+interrupted.ID+"/logs/stream", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		cl := &http.Client{Timeout: 2 * time.Minute}
		resp, err := cl.Do(req)
		if err != nil {
			sseDone <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		sseDone <- string(b)
	}()
	c.servers[victim].kill()
	killed := time.Now()
	t.Logf("killed server %d (%s) with SIGKILL while it rolled out %s (node %s done)", victim, c.ids[victim], interrupted.ID, interrupted.Nodes[0].Node)
	var takeover time.Duration
	for {
		c.getJSON(survivor, "/api/v1/leases", &ls)
		held := false
		for _, l := range ls.Leases {
			held = held || (l.Key == "Deployment/"+killName && l.Server == c.ids[1-victim])
		}
		if held {
			takeover = time.Since(killed)
			break
		}
		d := c.deployment(survivor, killName)
		if d.Status.Commit == k2 {
			takeover = time.Since(killed) // taken over and finished between two polls
			break
		}
		if time.Since(killed) > time.Minute {
			t.Fatalf("no takeover within a minute\n%s", c.serverLogs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("TAKEOVER: the other server holds %s %s after the SIGKILL (takeover interval 300ms)", killName, takeover.Round(time.Millisecond))
	c.waitConverged(survivor, names, commits, 2*time.Minute)
	ros := c.rollouts(survivor, killName)
	var old, next *api.Rollout
	for _, r := range ros {
		switch {
		case r.ID == interrupted.ID:
			old = r
		case r.Commit == k2 && r.State == api.RolloutSucceeded:
			if next != nil {
				t.Errorf("two succeeded rollouts of v2: %s and %s", next.ID, r.ID)
			}
			next = r
		}
	}
	if old == nil || old.State != api.RolloutCancelled || next == nil || next.Server != c.ids[1-victim] {
		b, _ := json.MarshalIndent(ros, "", "  ")
		t.Fatalf("after the takeover: interrupted %+v, successor %+v:\n%s", old, next, b)
	}
	select {
	case sse := <-sseDone:
		if !strings.Contains(sse, "step ") || !strings.Contains(sse, "event: end") || !strings.Contains(sse, api.RolloutCancelled) {
			t.Errorf("the interrupted rollout's log from the other server's SSE endpoint:\n%s", sse)
		}
	case <-time.After(30 * time.Second):
		t.Error("the other server's SSE stream of the interrupted rollout did not end")
	}
	for _, rn := range next.Nodes {
		if rn.Node == interrupted.Nodes[0].Node {
			t.Errorf("the successor %s ran again on %s, which had finished", next.ID, rn.Node)
		}
	}
	if h := c.cli(survivor, "rollout", "history", "deployment/"+killName); !strings.Contains(h, "SERVER") ||
		!strings.Contains(h, c.ids[victim]) || !strings.Contains(h, c.ids[1-victim]) {
		t.Errorf("rollout history should name both servers:\n%s", h)
	}
	for _, n := range nodes {
		if got := builds(n)[killName]; got != "v1 v2" {
			t.Errorf("%s on %s built %q, want v1 v2", killName, n.Name, got)
		}
	}
	checkNodes := func() {
		t.Helper()
		for _, n := range nodes {
			out, err := testnodes.Exec(t, n.Name, `nginx -t 2>&1 | tail -1; cd /var/lib/bakery/apps && for a in `+prefix+`*; do
  n=0; for s in blue green; do systemctl is-active --quiet bakery-$a-$s && n=$((n+1)); done; echo "$a active=$n"; done`)
			if err != nil || !strings.Contains(out, "test is successful") {
				t.Errorf("nginx on %s: %v\n%s", n.Name, err, out)
			}
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, " active=") && !strings.HasSuffix(l, " active=1") {
					t.Errorf("%s: %s", n.Name, l)
				}
			}
		}
	}
	checkNodes()

	// (3) Both servers again; every small deployment changes its spec and
	// PostgreSQL restarts while they roll out.
	c.start(victim)
	os.WriteFile(mf, []byte(manifest.String()+small("2")+killDep), 0o644)
	c.cli(c.servers[0], "apply", "-f", mf)
	// Restart once rollouts of the new specs are under way.
	deadline = time.Now().Add(time.Minute)
	running := 0
	for running < 3 && time.Now().Before(deadline) {
		var list struct {
			Items []api.Deployment `json:"items"`
		}
		c.getJSON(c.servers[0], "/api/v1/deployments", &list)
		running = 0
		for _, d := range list.Items {
			if cur := d.Status.CurrentRollout; cur != nil && cur.State == api.RolloutRunning && d.Status.ObservedGeneration < d.Metadata.Generation {
				running++
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.getJSON(c.servers[0], "/api/v1/leases", &ls)
	t.Logf("restarting PostgreSQL with %d keys held, %d rollouts running", len(ls.Leases), running)
	pgtest.Restart(t)
	c.waitConverged(c.servers[1], names, commits, 3*time.Minute)
	stateCount := map[string]int{}
	for _, name := range names[:19] {
		d := c.deployment(c.servers[0], name)
		ros := c.rollouts(c.servers[0], name)
		succeeded := 0
		var states []string
		for _, r := range ros {
			states = append(states, r.State)
			if r.Generation == d.Metadata.Generation {
				stateCount[r.State]++
			}
			if r.State == api.RolloutRunning {
				t.Errorf("%s: rollout %s still running", name, r.ID)
			}
			if r.Generation == d.Metadata.Generation && r.State == api.RolloutSucceeded {
				succeeded++
			}
		}
		if succeeded != 1 {
			t.Errorf("%s: %d succeeded rollouts of generation %d, want 1 (states %v)", name, succeeded, d.Metadata.Generation, states)
		}
	}
	t.Logf("rollouts of the new specs after the database restart, by state: %v", stateCount)
	lost := 0
	for _, s := range c.servers {
		lost += strings.Count(s.logs.String(), "lock connection lost")
	}
	if lost == 0 {
		t.Error("no server noticed that its lock connection was lost")
	}
	checkNodes()
	for i := range c.servers {
		c.getJSON(c.servers[i], "/api/v1/leases", &ls)
		if len(ls.Servers) != 2 {
			t.Errorf("server %d sees %d servers after the restart: %+v", i, len(ls.Servers), ls.Servers)
		}
	}
	var byServer []string
	for _, name := range names {
		for _, r := range c.rollouts(c.servers[0], name) {
			byServer = append(byServer, r.Server)
		}
	}
	sort.Strings(byServer)
	t.Logf("all rollouts by server: %v", strings.Join(byServer, " "))
}

func shellQuoteTest(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
