//go:build e2e

package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/scripts/testnodes"
)

// slotAnswer is what one request through a node's nginx got: the body
// ("hello from <commit>") and the slot that answered (X-Bakery-Slot:
// APP/SLOT).
type slotAnswer struct{ body, slot string }

func getSlot(client *http.Client, ip, host string) (slotAnswer, error) {
	req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(ip, "80")+"/", nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return slotAnswer{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return slotAnswer{}, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return slotAnswer{strings.TrimSpace(string(b)), resp.Header.Get("X-Bakery-Slot")}, nil
}

// TestE2EWaitForCausedRollout: `deploy --wait`, `rollout undo --wait` and
// `rollout restart --wait` return only once the rollout the command caused
// ended — checked right after each returns by the test's own requests to
// every node's nginx (each node serves the commit, or the other slot) —
// and a failed one exits 1 with the rollout's message, which names the
// health check's URL, attempts and last answer. Requests run through
// every node's nginx all along: none fails.
func TestE2EWaitForCausedRollout(t *testing.T) {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 3)
	home := isolate(t)
	tmp := t.TempDir()
	bin := buildBakery(t, tmp)
	data := labDataDir(t, lab, tmp)
	const app, host = "waittest", "waittest.example.test"
	for _, n := range nodes {
		removeAppFromNode(t, n, app)
	}
	repo, git, c1 := exampleAppRepo(t, tmp)
	commit := func(msg string, files map[string]string) string {
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(repo, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		git("add", ".")
		git("commit", "-q", "-m", msg)
		return git("rev-parse", "HEAD")
	}

	env := append(os.Environ(), "XDG_CONFIG_HOME="+home, "DATABASE_URL=", "BAKERY_SERVER=", "BAKERY_TOKEN=")
	// A long resync: only the commands make the loop roll out.
	srv := startServer(t, bin, data, env, "--resync", "1h")
	token, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(token))
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env, "BAKERY_SERVER="+srv.url, "BAKERY_TOKEN="+tok)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustCLI := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("bakery %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	var manifest strings.Builder
	var names []string
	for _, n := range nodes {
		fmt.Fprintf(&manifest, "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: %s}\nspec: {address: %s, hostKey: \"%s\"}\n---\n", n.Name, n.Address, n.HostKey)
		names = append(names, n.Name)
	}
	fmt.Fprintf(&manifest, `apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: %s}
spec:
  source: {repo: %s, ref: main}
  nodes: [%s]
  build: {build: node build.js}
  run: {command: node server.js}
  healthCheck: {path: /healthz, interval: 100ms, retries: 20}
  ingress: {hosts: [%s]}
  strategy: {drain: 300ms, maxUnavailable: 2}
`, app, repo, strings.Join(names, ", "), host)
	mf := filepath.Join(tmp, "app.yaml")
	os.WriteFile(mf, []byte(manifest.String()), 0o644)
	start := time.Now()
	if out := mustCLI("apply", "-f", mf, "--wait", "--timeout", "3m"); !strings.Contains(out, "deployment.bakery.dev/"+app+" rolled out: revision 1") {
		t.Fatalf("apply --wait:\n%s", out)
	}
	t.Logf("apply --wait on %d nodes: %v", len(nodes), time.Since(start).Round(time.Millisecond))

	// Requests through every node's nginx, all along.
	var ok, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := getSlot(c, n.Address, host); err != nil {
					failed.Add(1)
					failures.Store(n.Name+": "+err.Error(), true)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	stopLoad := func() {
		select {
		case <-stop:
			return
		default:
		}
		close(stop)
		wg.Wait()
	}
	t.Cleanup(stopLoad)

	// every asks each node once, right after a command returned, and
	// checks its answer.
	client := &http.Client{Timeout: 5 * time.Second}
	every := func(what string, check func(n testnodes.Node, a slotAnswer) error) map[string]slotAnswer {
		t.Helper()
		got := map[string]slotAnswer{}
		for _, n := range nodes {
			a, err := getSlot(client, n.Address, host)
			if err == nil {
				err = check(n, a)
			}
			if err != nil {
				t.Fatalf("right after %s, node %s: %v", what, n.Name, err)
			}
			got[n.Name] = a
		}
		return got
	}
	serves := func(c string) func(testnodes.Node, slotAnswer) error {
		return func(_ testnodes.Node, a slotAnswer) error {
			if !strings.HasPrefix(a.body, "hello from "+c[:12]) {
				return fmt.Errorf("answers %q, want commit %s", a.body, c[:12])
			}
			return nil
		}
	}
	rollout := func(id string) api.Rollout {
		var ro api.Rollout
		json.Unmarshal([]byte(httpGetJSON(t, srv.url+"/api/v1/rollouts/"+id, tok)), &ro)
		return ro
	}
	// lastRollout returns the rollout a --wait reported ("rollout ID
	// succeeded") and checks that it recorded the command's request.
	lastRollout := func(out, trigger string) api.Rollout {
		t.Helper()
		var d api.Deployment
		if err := json.Unmarshal([]byte(mustCLI("get", "deployment", app, "-o", "json")), &d); err != nil {
			t.Fatal(err)
		}
		lr := d.Status.LastRequest
		if lr == nil || lr.Rollout == "" || !strings.Contains(out, "rollout "+lr.Rollout+" succeeded") {
			t.Fatalf("status.lastRequest %+v; output:\n%s", lr, out)
		}
		ro := rollout(lr.Rollout)
		if ro.Request != lr.ID || ro.Trigger != trigger || ro.State != api.RolloutSucceeded {
			t.Fatalf("rollout %s: request %q (status says %q), trigger %q, state %s", ro.ID, ro.Request, lr.ID, ro.Trigger, ro.State)
		}
		return ro
	}

	// 1. deploy --wait of a new commit.
	c2 := commit("v2", map[string]string{"CHANGES": "v2\n"})
	start = time.Now()
	out := mustCLI("deploy", app, "--wait", "--timeout", "3m")
	took := time.Since(start)
	every("deploy --wait", serves(c2))
	lastRollout(out, api.TriggerDeployNow)
	t.Logf("deploy --wait returned after %v, every node serving %s:\n%s", took.Round(time.Millisecond), c2[:12], out)

	// 2. rollout undo --wait: back to c1 (a rollback changes no
	// generation: the old revision satisfied the old wait at once).
	start = time.Now()
	out = mustCLI("rollout", "undo", "deployment/"+app, "--wait", "--timeout", "3m")
	took = time.Since(start)
	every("rollout undo --wait", serves(c1))
	lastRollout(out, api.TriggerRollback)
	t.Logf("rollout undo --wait returned after %v, every node serving %s:\n%s", took.Round(time.Millisecond), c1[:12], out)

	// 3. rollout restart --wait: the other slot serves on every node.
	before := every("the undo, again", serves(c1))
	start = time.Now()
	out = mustCLI("rollout", "restart", "deployment/"+app, "--wait", "--timeout", "3m")
	took = time.Since(start)
	every("rollout restart --wait", func(n testnodes.Node, a slotAnswer) error {
		if err := serves(c1)(n, a); err != nil {
			return err
		}
		if a.slot == "" || a.slot == before[n.Name].slot {
			return fmt.Errorf("slot %q answers, as before the restart", a.slot)
		}
		return nil
	})
	lastRollout(out, api.TriggerRestart)
	t.Logf("rollout restart --wait returned after %v, every node serving from its other slot:\n%s", took.Round(time.Millisecond), out)

	// 4. A commit whose health check fails: deploy --wait exits 1 with the
	// rollout's message; the previous revision keeps serving.
	server, err := os.ReadFile(filepath.Join(repo, "server.js"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(server), "res.writeHead(200, { 'content-type': 'text/plain' });\n    res.end('ok\\n');",
		"res.writeHead(500, { 'content-type': 'text/plain' });\n    res.end('not ok\\n');", 1)
	if broken == string(server) {
		t.Fatal("could not break the example app's /healthz")
	}
	commit("unhealthy", map[string]string{"server.js": broken})
	out, err = cli("deploy", app, "--wait", "--timeout", "3m")
	if err == nil || !strings.Contains(out, "health check http://127.0.0.1:") || !strings.Contains(out, "/healthz failed after 20 attempts: last answer HTTP 500") {
		t.Fatalf("deploy --wait of an unhealthy commit: %v\n%s", err, out)
	}
	every("the failed deploy --wait", serves(c1))
	t.Logf("deploy --wait of an unhealthy commit exits 1:\n%s", out)

	stopLoad()
	t.Logf("requests through every node's nginx during the waits: %d ok, %d failed", ok.Load(), failed.Load())
	if failed.Load() > 0 {
		failures.Range(func(k, _ any) bool { t.Errorf("request failed: %v", k); return true })
		t.Fatalf("%d requests failed", failed.Load())
	}
}

// TestE2EWebhookAcrossServers: two `bakery server` processes on one
// PostgreSQL. While one of them rolls a deployment out (a slow build), a
// signed push webhook reaches the other: the push is recorded in the
// store, so the server running the rollout supersedes it at once and rolls
// the pushed commit out, recording trigger webhook.
func TestE2EWebhookAcrossServers(t *testing.T) {
	testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 2)
	home := isolate(t)
	tmp := t.TempDir()
	bin := buildBakery(t, tmp)
	const app = "hook-x"
	cleanNodes := func() {
		for _, n := range nodes {
			testnodes.Exec(t, n.Name, `for u in $(systemctl list-units --all --plain --no-legend 'bakery-`+app+`*' | awk '{print $1}'); do systemctl stop "$u"; done
rm -f /etc/systemd/system/bakery-`+app+`*; systemctl daemon-reload
rm -f /etc/nginx/conf.d/bakery-`+app+`*; nginx -s reload
rm -rf /var/lib/bakery/apps/`+app+`; sed -i '/bakery-hook-test/d' ~bakery-agent/.ssh/authorized_keys; true`)
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
	var manifest strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&manifest, "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: %s}\nspec: {address: %s, hostKey: %q}\n---\n", n.Name, n.Address, n.HostKey)
	}
	mf := filepath.Join(tmp, "nodes.yaml")
	os.WriteFile(mf, []byte(manifest.String()), 0o644)
	c.cli(c.servers[0], "apply", "-f", mf)
	var boot struct {
		PublicKey string `json:"publicKey"`
	}
	c.getJSON(c.servers[1], "/api/v1/nodes/"+nodes[0].Name+"/bootstrap", &boot)
	for _, n := range nodes {
		testnodes.Exec(t, n.Name, fmt.Sprintf("echo %s >> ~bakery-agent/.ssh/authorized_keys",
			shellQuoteTest(strings.Fields(boot.PublicKey)[0]+" "+strings.Fields(boot.PublicKey)[1]+" bakery-hook-test")))
	}
	for _, n := range nodes {
		c.cli(c.servers[1], "node", "verify", n.Name)
	}

	// A static site whose build sleeps as long as its SLEEP file says.
	dir := filepath.Join(tmp, "site")
	os.MkdirAll(dir, 0o755)
	git := gitIn(t, dir)
	git("init", "-q", "-b", "main")
	commit := func(version, sleep string) string {
		os.WriteFile(filepath.Join(dir, "VERSION"), []byte(version+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "SLEEP"), []byte(sleep+"\n"), 0o644)
		git("add", ".")
		git("commit", "-q", "-m", version)
		return git("rev-parse", "HEAD")
	}
	commit("v1", "0")
	dep := fmt.Sprintf(`apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: %s}
spec:
  source: {repo: %s, ref: main}
  nodes: [%s, %s]
  build: {build: 'sleep $(cat SLEEP); echo ok > index.html'}
  run: {command: 'exec busybox httpd -f -p 127.0.0.1:$PORT -h .'}
  healthCheck: {path: /, interval: 100ms, retries: 50}
  strategy: {drain: 300ms, maxUnavailable: 2}
`, app, dir, nodes[0].Name, nodes[1].Name)
	df := filepath.Join(tmp, "app.yaml")
	os.WriteFile(df, []byte(dep), 0o644)
	c.cli(c.servers[0], "apply", "-f", df, "--wait", "--timeout", "2m")
	secret := regexp.MustCompile(`Secret:\s+(\S+)`).FindStringSubmatch(c.cli(c.servers[0], "webhook", "create", dir))
	if secret == nil {
		t.Fatal("webhook create printed no secret")
	}

	// A slow commit, found by the resync (3s: whichever server finds it
	// first; no `deploy`, whose request would still be pending when a
	// resync found the commit first, and would then be what the next
	// rollout carries out: trigger deploy-now); the webhook of the next
	// commit goes to the server that does not run that rollout.
	c2 := commit("v2", "30")
	var running *api.Rollout
	deadline := time.Now().Add(time.Minute)
	for running == nil {
		if ros := c.rollouts(c.servers[0], app); len(ros) > 0 && ros[0].Commit == c2 && ros[0].State == api.RolloutRunning {
			running = ros[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("the rollout of v2 never ran\n%s", c.serverLogs())
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	other := 0
	if running.Server == c.ids[0] {
		other = 1
	}
	c3 := commit("v3", "0")
	hooks := &webhookSender{t: t, url: c.servers[other].url}
	start := time.Now()
	if code, body := hooks.push(dir, "refs/heads/main", c3, secret[1], "x-1"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	c.waitConverged(c.servers[0], []string{app}, map[string]string{app: c3}, time.Minute)
	took := time.Since(start)
	ros := c.rollouts(c.servers[0], app)
	// v3's rollout has v2's revision (v2 never succeeded) and may have
	// been created within v2's second: find it by its commit.
	var v3 *api.Rollout
	for _, ro := range ros {
		if ro.Commit == c3 {
			v3 = ro
			break
		}
	}
	if v3 == nil {
		t.Fatalf("no rollout of v3 (%s) among %d", c3, len(ros))
	}
	if v3.Trigger != api.TriggerWebhook || v3.State != api.RolloutSucceeded {
		t.Fatalf("v3's rollout %s: trigger %s, state %s; want webhook, succeeded", v3.ID, v3.Trigger, v3.State)
	}
	for _, ro := range ros {
		if ro.ID == running.ID && ro.State != api.RolloutSuperseded {
			t.Fatalf("the v2 rollout %s ended %s, want superseded", ro.ID, ro.State)
		}
	}
	t.Logf("webhook at server %s while server %s rolled v2 out (a 30s build): v3 rolled out by %s with trigger %s in %v",
		c.ids[other], running.Server, v3.Server, v3.Trigger, took.Round(time.Millisecond))
}
