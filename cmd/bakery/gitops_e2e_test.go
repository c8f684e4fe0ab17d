//go:build e2e

package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/scripts/testnodes"
)

// gitRepo is a git repository on the test host.
type gitRepo struct {
	t   *testing.T
	dir string
}

func (r gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.test", "-C", r.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files ("" removes one) and returns the new commit.
func (r gitRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if content == "" {
			os.Remove(p)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

// webhookSender signs and sends GitHub push deliveries.
type webhookSender struct {
	t   *testing.T
	url string
}

func (w *webhookSender) push(repo, ref, after, secret, delivery string) (int, string) {
	w.t.Helper()
	body := fmt.Sprintf(`{"ref":%q,"before":"%s","after":%q,"repository":{"full_name":"local/repo","clone_url":%q},"pusher":{"name":"t"}}`,
		ref, strings.Repeat("0", 40), after, repo)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", w.url+"/api/v1/webhooks/github", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getVia(client *http.Client, ip, host string) (string, error) {
	req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(ip, "80")+"/", nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(b)), nil
}

// TestE2EGitOps: a manifest repository and an app repository on the test
// host, a real `bakery server` and real nodes. Signed push webhooks (sent
// by the test) create, roll out and prune deployments; a wrongly signed
// delivery changes nothing; a replayed one is ignored; an invalid
// manifest commit applies nothing; a watched directory is followed.
func TestE2EGitOps(t *testing.T) {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 2)
	home := isolate(t)
	tmp := t.TempDir()
	bin := buildBakery(t, tmp)
	data := labDataDir(t, lab, tmp)
	const app = "gitops-web"
	for _, n := range nodes {
		removeAppFromNode(t, n, app)
	}

	appRepo := gitRepo{t, filepath.Join(tmp, "app")}
	if err := os.CopyFS(appRepo.dir, os.DirFS("../../examples/hello/app")); err != nil {
		t.Fatal(err)
	}
	appRepo.git("init", "-q", "-b", "main")
	c1 := appRepo.commit("v1", nil)
	manRepo := gitRepo{t, filepath.Join(tmp, "manifests")}
	os.MkdirAll(manRepo.dir, 0o755)
	manRepo.git("init", "-q", "-b", "main")
	manRepo.commit("empty", map[string]string{"deploy/README.md": "manifests\n"})
	watched := filepath.Join(tmp, "watched")
	os.MkdirAll(watched, 0o755)

	env := append(os.Environ(), "XDG_CONFIG_HOME="+home, "DATABASE_URL=", "BAKERY_SERVER=", "BAKERY_TOKEN=", "BAKERY_ENCRYPTION_KEY=")
	// A long resync: only webhooks make the loop look at the branches.
	srv := startServer(t, bin, data, env, "--resync", "10m", "--manifests", watched)
	tokenB, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenB))
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env, "BAKERY_SERVER="+srv.url, "BAKERY_TOKEN="+token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustCLI := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("bakery %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, srv.logs.String())
		}
		return out
	}
	getJSON := func(kind, name string, into any) bool {
		out, err := cli("get", kind, name, "-o", "json")
		if err != nil {
			return false
		}
		return json.Unmarshal([]byte(out), into) == nil
	}
	wait := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s\nserver log:\n%s", what, srv.logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	secretRE := regexp.MustCompile(`Secret:\s+(\S+)`)
	secretOf := func(repo string) string {
		out := mustCLI("webhook", "create", repo)
		m := secretRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("webhook create printed no secret:\n%s", out)
		}
		if again := mustCLI("webhook", "get", repo); strings.Contains(again, m[1]) {
			t.Fatal("webhook get printed the secret again")
		}
		return m[1]
	}
	appSecret, manSecret := secretOf(appRepo.dir), secretOf(manRepo.dir)
	hooks := &webhookSender{t: t, url: srv.url}

	// Nodes and a hand-made (suspended) deployment, applied by hand.
	hand := fmt.Sprintf(`apiVersion: bakery.dev/v1
kind: Node
metadata: {name: %[1]s}
spec: {address: %[2]s, hostKey: "%[3]s"}
---
apiVersion: bakery.dev/v1
kind: Node
metadata: {name: %[4]s}
spec: {address: %[5]s, hostKey: "%[6]s"}
---
apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: handmade}
spec:
  source: {repo: %[7]s}
  nodes: [%[1]s]
  run: {command: node server.js}
  suspend: true
---
apiVersion: bakery.dev/v1
kind: ManifestSource
metadata: {name: apps}
spec: {repo: %[8]s, branch: main, path: deploy, interval: 1h}
`, nodes[0].Name, nodes[0].Address, nodes[0].HostKey, nodes[1].Name, nodes[1].Address, nodes[1].HostKey, appRepo.dir, manRepo.dir)
	hf := filepath.Join(tmp, "hand.yaml")
	os.WriteFile(hf, []byte(hand), 0o644)
	mustCLI("apply", "-f", hf)
	var ms api.ManifestSource
	wait("the source's first sync", 30*time.Second, func() bool { return getJSON("manifestsource", "apps", &ms) && ms.Status.LastSyncedCommit != "" })

	// 1. A deployment added to the manifest repository: created and deployed.
	webYAML := fmt.Sprintf(`apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: %s}
spec:
  source: {repo: %s, ref: main}
  nodes: [%s, %s]
  build: {build: node build.js}
  run: {command: node server.js}
  healthCheck: {path: /healthz, interval: 100ms, retries: 50}
  ingress: {hosts: [gitops.example.test]}
  strategy: {maxUnavailable: 2, drain: 200ms}
`, app, appRepo.dir, nodes[0].Name, nodes[1].Name)
	m1 := manRepo.commit("add web", map[string]string{"deploy/web.yaml": webYAML})
	if code, body := hooks.push(manRepo.dir, "refs/heads/main", m1, manSecret, "m-1"); code != http.StatusAccepted {
		t.Fatalf("manifest push: %d %s", code, body)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	serves := func(commit string) bool {
		for _, n := range nodes {
			b, err := getVia(client, n.Address, "gitops.example.test")
			if err != nil || !strings.HasPrefix(b, "hello from "+commit[:12]) {
				return false
			}
		}
		return true
	}
	wait("the deployment from the manifest repo serves v1", 3*time.Minute, func() bool { return serves(c1) })
	// Its rollout says what caused it: the manifest source's sync.
	var first api.Deployment
	if getJSON("deployment", app, &first); first.Status.CurrentRollout != nil {
		var ro api.Rollout
		json.Unmarshal([]byte(httpGetJSON(t, srv.url+"/api/v1/rollouts/"+first.Status.CurrentRollout.ID, token)), &ro)
		if ro.Trigger != api.TriggerManifestSource || ro.TriggeredBy != "ManifestSource/apps" {
			t.Errorf("the first rollout of a deployment a ManifestSource wrote: trigger %q by %q, want manifest-source by ManifestSource/apps", ro.Trigger, ro.TriggeredBy)
		}
	}
	getJSON("manifestsource", "apps", &ms)
	if ms.Status.LastSyncedCommit != m1 || strings.Join(ms.Status.Created, ",") != "Deployment/"+app {
		t.Fatalf("source status after adding: %+v", ms.Status)
	}
	out := mustCLI("source", "describe", "apps")
	if !strings.Contains(out, m1) || !strings.Contains(out, "Deployment/"+app) {
		t.Fatalf("source describe:\n%s", out)
	}

	// 2. A push to the app repository, wrongly signed: 401, nothing done.
	type rolloutItem struct {
		ID     string `json:"id"`
		Commit string `json:"commit"`
		State  string `json:"state"`
	}
	rollouts := func() []rolloutItem {
		var l struct{ Items []rolloutItem }
		json.Unmarshal([]byte(httpGetJSON(t, srv.url+"/api/v1/deployments/"+app+"/rollouts", token)), &l)
		return l.Items
	}
	ids := func() string {
		var s []string
		for _, r := range rollouts() {
			s = append(s, r.ID)
		}
		return strings.Join(s, " ")
	}
	c2 := appRepo.commit("v2", map[string]string{"CHANGES": "v2\n"})
	rolloutsBefore := ids()
	if code, _ := hooks.push(appRepo.dir, "refs/heads/main", c2, "wrong-secret", "a-1"); code != http.StatusUnauthorized {
		t.Fatalf("wrongly signed push: %d", code)
	}
	if code, _ := hooks.push(appRepo.dir, "refs/heads/other", c2, appSecret, "a-other"); code != http.StatusAccepted {
		t.Fatalf("push to another branch: %d", code)
	}
	wait("the other-branch push recorded as ignored", 10*time.Second, func() bool {
		return strings.Contains(httpGetJSON(t, srv.url+"/api/v1/events?object=Deployment/"+app, token), "PushIgnored")
	})
	if now := ids(); now != rolloutsBefore || serves(c2) {
		t.Fatalf("a bad or ignored push started a rollout:\n%s", now)
	}

	// 3. Correctly signed: rolled out; time from receipt to serving.
	t0 := time.Now()
	if code, body := hooks.push(appRepo.dir, "refs/heads/main", c2, appSecret, "a-2"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	accepted := time.Since(t0)
	wait("v2 serves on every node", 3*time.Minute, func() bool { return serves(c2) })
	total := time.Since(t0)
	var d api.Deployment
	getJSON("deployment", app, &d)
	if d.Status.CurrentRollout != nil {
		var ro api.Rollout
		json.Unmarshal([]byte(httpGetJSON(t, srv.url+"/api/v1/rollouts/"+d.Status.CurrentRollout.ID, token)), &ro)
		// The rollout says the webhook's push caused it.
		if ro.Commit != c2 || ro.Trigger != api.TriggerWebhook || ro.TriggeredBy != "webhook (delivery a-2)" {
			t.Errorf("the rollout of a pushed commit: commit %s, trigger %q by %q; want %s, webhook by \"webhook (delivery a-2)\"", ro.Commit, ro.Trigger, ro.TriggeredBy, c2)
		}
		// Nodes run in parallel (maxUnavailable 2): the slowest node's
		// steps are the rollout's critical path.
		var slow api.RolloutNode
		var slowMS int64
		for _, n := range ro.Nodes {
			var ms int64
			for _, s := range n.Steps {
				ms += s.DurationMillis
			}
			if ms >= slowMS {
				slow, slowMS = n, ms
			}
		}
		per := map[string]int64{}
		var buildHealth int64
		for _, s := range slow.Steps {
			k, _, _ := strings.Cut(s.Name, " ")
			per[k] += s.DurationMillis
			if k == "build" || k == "health" { // "install" is Bakery's checkout and unit

				buildHealth += s.DurationMillis
			}
		}
		t.Logf("webhook → v2 serving on %d nodes: %v (webhook answered in %v); slowest node's steps %d ms %v; build (install/test/build commands) + health check %d ms; Bakery's overhead ≈ %v, of which %v before the first step (queue, fetch and resolve, observe) and the rest fetch (bundle), install (checkout, unit), start, switch",
			len(nodes), total.Round(time.Millisecond), accepted.Round(time.Millisecond), slowMS, per, buildHealth,
			(total - time.Duration(buildHealth)*time.Millisecond).Round(time.Millisecond), (total - time.Duration(slowMS)*time.Millisecond).Round(time.Millisecond))
	}

	// 4. The same delivery replayed: ignored.
	historyBefore := ids()
	code, body := hooks.push(appRepo.dir, "refs/heads/main", c2, appSecret, "a-2")
	if code != http.StatusOK || !strings.Contains(body, "duplicate") {
		t.Fatalf("replayed delivery: %d %s", code, body)
	}
	if h := ids(); h != historyBefore {
		t.Fatalf("a replayed delivery started a rollout:\n%s", h)
	}

	// 5. Pushes in a row coalesce, the newest wins: a push of v3 (a slow
	// build) starts a rollout; a push of v4 supersedes it mid-build.
	fastBuild, err := os.ReadFile(filepath.Join(appRepo.dir, "build.js"))
	if err != nil {
		t.Fatal(err)
	}
	c3 := appRepo.commit("v3, slow build", map[string]string{"build.js": "require('child_process').execSync('sleep 60');\n" + string(fastBuild)})
	hooks.push(appRepo.dir, "refs/heads/main", c3, appSecret, "a-3")
	wait("the v3 rollout runs", time.Minute, func() bool {
		rs := rollouts()
		return len(rs) > 0 && rs[0].Commit == c3 && rs[0].State == api.RolloutRunning
	})
	c4 := appRepo.commit("v4", map[string]string{"build.js": string(fastBuild), "CHANGES": "v4\n"})
	hooks.push(appRepo.dir, "refs/heads/main", c4, appSecret, "a-4")
	hooks.push(appRepo.dir, "refs/heads/main", c4, appSecret, "a-5") // same commit again: no second rollout
	wait("v4 serves on every node", 3*time.Minute, func() bool { return serves(c4) })
	stateOf := func() map[string][]string {
		m := map[string][]string{}
		for _, r := range rollouts() {
			m[r.Commit] = append(m[r.Commit], r.State)
		}
		return m
	}
	wait("the v4 rollout finished", time.Minute, func() bool { return fmt.Sprint(stateOf()[c4]) == "["+api.RolloutSucceeded+"]" })
	if st := stateOf(); fmt.Sprint(st[c3]) != "["+api.RolloutSuperseded+"]" || len(st[c4]) != 1 {
		t.Fatalf("rollouts of v3: %v, of v4: %v; want one superseded, one succeeded", st[c3], st[c4])
	}
	for _, n := range nodes {
		if out, _ := testnodes.Exec(t, n.Name, "pgrep -f 'sleep [6]0' || true"); strings.TrimSpace(out) != "" {
			t.Fatalf("%s: the superseded build still runs", n.Name)
		}
	}

	// 5. An invalid manifest commit: nothing applied, the error on status.
	m2 := manRepo.commit("broken", map[string]string{
		"deploy/web.yaml": strings.Replace(webYAML, "drain: 200ms", "drain: 300ms", 1),
		"deploy/bad.yaml": "apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata: {name: bad}\nspec: {sauce: {}}\n",
	})
	hooks.push(manRepo.dir, "refs/heads/main", m2, manSecret, "m-2")
	wait("the invalid commit's error on the source", 30*time.Second, func() bool {
		return getJSON("manifestsource", "apps", &ms) && ms.Status.LastAttemptedCommit == m2 && strings.Contains(ms.Status.LastError, "sauce")
	})
	getJSON("deployment", app, &d)
	if d.Spec.Strategy.Drain.Duration != 200*time.Millisecond || ms.Status.LastSyncedCommit != m1 {
		t.Fatalf("an invalid bundle applied something: drain %v, synced %s", d.Spec.Strategy.Drain, ms.Status.LastSyncedCommit)
	}

	// 6. Removed from the repository: pruned from the store and the nodes.
	m3 := manRepo.commit("remove web", map[string]string{"deploy/web.yaml": "", "deploy/bad.yaml": ""})
	hooks.push(manRepo.dir, "refs/heads/main", m3, manSecret, "m-3")
	wait("the deployment pruned from the store", 2*time.Minute, func() bool {
		_, err := cli("get", "deployment", app)
		return err != nil
	})
	for _, n := range nodes {
		out, _ := testnodes.SSH(t, n, "ls /var/lib/bakery/apps/; ls /etc/nginx/conf.d/ 2>/dev/null; systemctl list-units --all --plain --no-legend 'bakery-*' 2>/dev/null")
		if strings.Contains(out, app) {
			t.Fatalf("%s still has %s after the prune:\n%s", n.Name, app, out)
		}
	}
	if _, err := cli("get", "deployment", "handmade"); err != nil {
		t.Fatal("the hand-made deployment was pruned")
	}
	if out := mustCLI("source", "sync", "apps", "--wait", "30s"); !strings.Contains(out, "synced commit "+m3[:7]+" (0 objects); last changes: pruned Deployment/"+app) {
		t.Fatalf("source sync --wait:\n%s", out)
	}
	if out := mustCLI("source", "get"); !strings.Contains(out, "apps") || !strings.Contains(out, m3[:7]) {
		t.Fatalf("source get:\n%s", out)
	}

	// 7. The watched directory: write, rename over, delete.
	dep := func(cmd string) string {
		return fmt.Sprintf("apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata: {name: watched}\nspec:\n  source: {repo: %s}\n  nodes: [%s]\n  run: {command: %s}\n  suspend: true\n", appRepo.dir, nodes[0].Name, cmd)
	}
	os.WriteFile(filepath.Join(watched, "w.yaml"), []byte(dep("one")), 0o644)
	wait("the watched file applied", 20*time.Second, func() bool { return getJSON("deployment", "watched", &d) && d.Spec.Run.Command == "one" })
	os.WriteFile(filepath.Join(watched, ".w.yaml.swp"), []byte("{{{"), 0o644)
	os.WriteFile(filepath.Join(watched, "w.yaml.tmp"), []byte(dep("two")), 0o644)
	os.Rename(filepath.Join(watched, "w.yaml.tmp"), filepath.Join(watched, "w.yaml"))
	wait("the renamed-over file applied", 20*time.Second, func() bool { return getJSON("deployment", "watched", &d) && d.Spec.Run.Command == "two" })
	full := []byte(dep("three"))
	os.WriteFile(filepath.Join(watched, "w.yaml"), full[:bytes.Index(full, []byte("run:"))+6], 0o644)
	wait("the half-written file refused", 20*time.Second, func() bool {
		return strings.Contains(srv.logs.String(), "manifests directory: nothing applied")
	})
	if getJSON("deployment", "watched", &d); d.Spec.Run.Command != "two" {
		t.Fatalf("a half-written file was applied: %q", d.Spec.Run.Command)
	}
	os.Remove(filepath.Join(watched, "w.yaml"))
	wait("the deleted file's deployment pruned", time.Minute, func() bool {
		_, err := cli("get", "deployment", "watched")
		return err != nil
	})
}
