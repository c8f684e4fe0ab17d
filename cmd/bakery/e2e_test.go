//go:build e2e

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
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

// e2eServer is a `bakery server` process.
type e2eServer struct {
	cmd    *exec.Cmd
	url    string
	logs   *lockedBuffer
	exited chan error
}

// startServer starts `bakery server`; extra flags come last (and win).
func startServer(t *testing.T, bin, data string, env []string, extra ...string) *e2eServer {
	t.Helper()
	return startServerArgs(t, bin, env, append([]string{"--data", data, "--resync", "500ms"}, extra...)...)
}

// startServerArgs starts `bakery server --listen 127.0.0.1:0 args…`.
func startServerArgs(t *testing.T, bin string, env []string, args ...string) *e2eServer {
	t.Helper()
	s := &e2eServer{logs: &lockedBuffer{}, exited: make(chan error, 1)}
	s.cmd = exec.Command(bin, append([]string{"server", "--listen", "127.0.0.1:0"}, args...)...)
	s.cmd.Env = env
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`serving on (http://\S+)`)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.logs.Write(append(sc.Bytes(), '\n'))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		s.exited <- s.cmd.Wait()
	}()
	t.Cleanup(func() { s.kill() })
	select {
	case s.url = <-urls:
	case err := <-s.exited:
		t.Fatalf("server exited: %v\n%s", err, s.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no banner within 30s:\n%s", s.logs.String())
	}
	waitReady(t, s.url)
	return s
}

// kill sends SIGKILL: no graceful shutdown, nothing flushed.
func (s *e2eServer) kill() {
	if s.cmd.ProcessState == nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.exited <- nil
	}
}

// TestE2ECLIAndKilledControlPlane drives the real binary against real
// nodes: bakery apply, get, rollout status, history and logs; then kills
// the server with SIGKILL in the middle of a rollout (after nginx switched
// on the first node, while the old slot drains) and starts it again: the
// rollout is finished from what the nodes say, and no node is left with
// two running slots or nginx pointing at a stopped one.
func TestE2ECLIAndKilledControlPlane(t *testing.T) {
	lab := testnodes.Require(t)
	nodes := testnodes.RequireNodes(t, 2)
	home := isolate(t)
	tmp := t.TempDir()
	bin := buildBakery(t, tmp)
	data := labDataDir(t, lab, tmp)
	for _, n := range nodes {
		removeAppFromNode(t, n, "killtest")
	}

	// The app's repository on the control plane.
	repo, git, c1 := exampleAppRepo(t, tmp)

	env := append(os.Environ(), "XDG_CONFIG_HOME="+home, "DATABASE_URL=", "BAKERY_SERVER=", "BAKERY_TOKEN=")
	srv := startServer(t, bin, data, env)
	token, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env, "BAKERY_SERVER="+srv.url, "BAKERY_TOKEN="+strings.TrimSpace(string(token)))
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

	manifest := fmt.Sprintf(`apiVersion: bakery.dev/v1
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
metadata: {name: killtest}
spec:
  source: {repo: %[7]s, ref: main}
  nodes: [%[1]s, %[4]s]
  build: {test: node --test, build: node build.js}
  run: {command: node server.js}
  healthCheck: {path: /healthz, interval: 100ms, retries: 50}
  ingress: {hosts: [killtest.example.test]}
  strategy: {drain: 4s}
`, nodes[0].Name, nodes[0].Address, nodes[0].HostKey, nodes[1].Name, nodes[1].Address, nodes[1].HostKey, repo)
	mf := filepath.Join(tmp, "app.yaml")
	os.WriteFile(mf, []byte(manifest), 0o644)
	out := mustCLI("apply", "-f", mf, "--wait", "--timeout", "3m")
	for _, want := range []string{"node.bakery.dev/" + nodes[0].Name + " created", "deployment.bakery.dev/killtest created",
		"deployment.bakery.dev/killtest rolled out: revision 1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("apply --wait output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("apply --wait:\n%s", out)
	out = mustCLI("get", "nodes")
	if !strings.Contains(out, "True") {
		t.Fatalf("get nodes:\n%s", out)
	}
	out = mustCLI("get", "deployment", "killtest", "-o", "json")
	var d api.Deployment
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Status.Commit != c1 || d.Status.Revision != 1 || !api.IsTrue(d.Status.Conditions, api.ConditionReady) {
		t.Fatalf("after the first rollout: %+v", d.Status)
	}
	if out := mustCLI("logs", "deployment/killtest"); !strings.Contains(out, "health check passed") {
		t.Fatalf("bakery logs lacks the health check:\n%s", out)
	}

	// Runtime logs: the app's journal on every node, over SSE.
	tok := strings.TrimSpace(string(token))
	body := httpGetJSON(t, srv.url+"/api/v1/deployments/killtest/logs?lines=50", tok)
	if !strings.Contains(body, "event: end") || strings.Count(body, "listening on 127.0.0.1:") < 2 {
		t.Fatalf("runtime logs of both nodes:\n%s", body)
	}
	out = mustCLI("logs", "deployment/killtest", "--runtime", "--lines", "20")
	for _, n := range nodes {
		if !strings.Contains(out, n.Name+" blue ") || !strings.Contains(out, "listening on 127.0.0.1:") {
			t.Fatalf("bakery logs --runtime lacks %s's journal:\n%s", n.Name, out)
		}
	}
	// Following: the remote journalctl ends when the client goes away.
	freq, _ := http.NewRequest("GET", srv.url+"/api/v1/deployments/killtest/logs?lines=1&follow=true&node="+nodes[0].Name, nil)
	freq.Header.Set("Authorization", "Bearer "+tok)
	fresp, err := http.DefaultClient.Do(freq)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(fresp.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "event: line") {
	}
	running := func() bool {
		out, _ := testnodes.Exec(t, nodes[0].Name, "pgrep -f '^journalctl .*bakery-killtest' || true")
		return strings.TrimSpace(out) != ""
	}
	if !running() {
		t.Fatal("no journalctl runs on the node while the runtime log is followed")
	}
	fresp.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for running() {
		if time.Now().After(deadline) {
			t.Fatal("the remote journalctl still runs 20s after the client went away")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A new commit; kill the server while node 1 drains its old slot.
	os.WriteFile(filepath.Join(repo, "CHANGES"), []byte("v2\n"), 0o644)
	git("add", ".")
	git("commit", "-q", "-m", "v2")
	c2 := git("rev-parse", "HEAD")
	mustCLI("deploy", "killtest")
	deadline = time.Now().Add(3 * time.Minute)
	var last string
	for {
		out := mustCLI("rollout", "history", "deployment/killtest", "--limit", "1")
		last = out
		if strings.Contains(out, c2[:12]) && strings.Contains(out, "running") {
			r, _ := cli("get", "deployment", "killtest", "-o", "json")
			var cur api.Deployment
			json.Unmarshal([]byte(r), &cur)
			if id := cur.Status.CurrentRollout; id != nil {
				rj := httpGetJSON(t, srv.url+"/api/v1/rollouts/"+id.ID, strings.TrimSpace(string(token)))
				last += "\n" + rj
				if regexp.MustCompile(`"name":\s*"drain`).MatchString(rj) {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rollout never reached its drain step; last seen:\n%s", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.kill()
	t.Log("control plane killed with SIGKILL while node 1 drained its old slot")

	srv = startServer(t, bin, data, env)
	if out, err := cli("rollout", "status", "deployment/killtest", "--timeout", "3m"); err != nil {
		h, _ := cli("rollout", "history", "deployment/killtest")
		lg, _ := cli("logs", "deployment/killtest")
		var important []string
		for _, l := range strings.Split(srv.logs.String(), "\n") {
			if !strings.Contains(l, "http request") {
				important = append(important, l)
			}
		}
		t.Fatalf("rollout after the restart: %v\n%s\nhistory:\n%s\nlogs:\n%s\nserver:\n%s", err, out, h, lg, strings.Join(important, "\n"))
	}
	out = mustCLI("get", "deployment", "killtest", "-o", "json")
	d = api.Deployment{}
	json.Unmarshal([]byte(out), &d)
	if d.Status.Commit != c2 || !api.IsTrue(d.Status.Conditions, api.ConditionReady) {
		t.Fatalf("after the restart: %+v", d.Status)
	}
	// Every node: exactly one slot running, the one state.json and nginx name.
	for _, n := range nodes {
		deadline := time.Now().Add(30 * time.Second)
		for {
			o, _ := testnodes.SSH(t, n, `a=$(sed -n 's/.*"active": "\(.*\)".*/\1/p' /var/lib/bakery/apps/killtest/state.json); `+
				`echo "active=$a"; for s in blue green; do echo "$s=$(systemctl is-active bakery-killtest-$s)"; done; `+
				`curl -s -o /dev/null -D - -H 'Host: killtest.example.test' http://127.0.0.1/healthz | tr -d '\r' | grep -i x-bakery-slot`)
			f := map[string]string{}
			for _, line := range strings.Split(o, "\n") {
				if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
					f[k] = v
				}
				if k, v, ok := strings.Cut(line, ": "); ok && strings.EqualFold(k, "x-bakery-slot") {
					f["nginx"] = strings.TrimSpace(v)
				}
			}
			other := map[string]string{"blue": "green", "green": "blue"}[f["active"]]
			if f["active"] != "" && f[f["active"]] == "active" && f[other] != "active" && f["nginx"] == "killtest/"+f["active"] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is half-switched: %v\n%s", n.Name, f, o)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	out = mustCLI("rollout", "history", "deployment/killtest")
	t.Logf("rollout history after the restart:\n%s", out)
	if strings.Contains(out, "running") {
		t.Errorf("a rollout is still marked running:\n%s", out)
	}
	// apply --wait exits non-zero when the rollout fails.
	broken := strings.Replace(manifest, "build: {test: node --test, build: node build.js}", "build: {test: 'exit 3', build: node build.js}", 1)
	os.WriteFile(mf, []byte(broken), 0o644)
	if out, err := cli("apply", "-f", mf, "--wait", "--timeout", "3m"); err == nil || !strings.Contains(out, "killtest failed") {
		h, _ := cli("rollout", "history", "deployment/killtest")
		g, _ := cli("get", "deployment", "killtest", "-o", "yaml")
		t.Fatalf("apply --wait of a failing rollout: err %v\n%s\nhistory:\n%s\n%s", err, out, h, g)
	}
	mustCLI("delete", "deployment", "killtest", "--timeout", "2m")
}

func httpGetJSON(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestE2ELocalMode copies the bakery binary into a node, runs `bakery
// server` there as bakery-agent with a `local: true` Node, and deploys the
// example app under that node's own systemd and nginx: the same workflow
// through the local executor instead of SSH.
func TestE2ELocalMode(t *testing.T) {
	testnodes.Require(t)
	node := testnodes.Scratch(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bakery")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	exec1 := func(cmd string, stdin []byte) string {
		t.Helper()
		out, err := testnodes.ExecInput(t, node.Name, cmd, stdin)
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		return out
	}
	exec1("cat > /usr/local/bin/bakery && chmod 755 /usr/local/bin/bakery", b)
	// The app's repository, inside the node (a local node has no other host).
	tarball, err := exec.Command("tar", "-C", "../../examples/hello/app", "-c", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	exec1(`set -e
mkdir -p /srv/hello && tar -x -C /srv/hello && cd /srv/hello
git init -q -b main && git add . && git -c user.name=t -c user.email=t@example.test commit -q -m v1
chown -R bakery-agent: /srv/hello`, tarball)
	exec1(`systemd-run --unit=bakery-control-plane --uid=bakery-agent --setenv=HOME=/home/bakery-agent \
  /usr/local/bin/bakery server --data /var/lib/bakery/control-plane --listen 127.0.0.1:8080 --resync 1s --allow-local-nodes`, nil)
	manifest := `apiVersion: bakery.dev/v1
kind: Node
metadata: {name: self}
spec: {local: true}
---
apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: hello}
spec:
  source: {repo: /srv/hello, ref: main}
  nodes: [self]
  build: {test: node --test, build: node build.js}
  run: {command: node server.js, env: [{name: GREETING, value: local}]}
  healthCheck: {path: /healthz, interval: 100ms, retries: 50}
  ingress: {hosts: [local.example.test]}
`
	exec1("cat > /tmp/app.yaml", []byte(manifest))
	out := exec1(`set -e
for i in $(seq 100); do [ -s /var/lib/bakery/control-plane/admin-token ] && break; sleep 0.1; done
export BAKERY_SERVER=http://127.0.0.1:8080 BAKERY_TOKEN=$(cat /var/lib/bakery/control-plane/admin-token)
cd /tmp && runuser -u bakery-agent -- env BAKERY_SERVER=$BAKERY_SERVER BAKERY_TOKEN=$BAKERY_TOKEN bakery apply -f /tmp/app.yaml
runuser -u bakery-agent -- env BAKERY_SERVER=$BAKERY_SERVER BAKERY_TOKEN=$BAKERY_TOKEN bakery rollout status deployment/hello --timeout 3m
curl -fsS -H 'Host: local.example.test' http://127.0.0.1/`, nil)
	if !strings.Contains(out, "local from ") {
		t.Fatalf("the app deployed in local mode does not answer:\n%s", out)
	}
	if active := exec1("systemctl is-active bakery-hello-blue", nil); strings.TrimSpace(active) != "active" {
		t.Fatalf("unit bakery-hello-blue: %s", active)
	}
}

// buildBakery builds the binary under test into dir and returns its path.
func buildBakery(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bakery")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// labDataDir returns dir/data, prepared as a server data directory whose
// SSH identity is the lab's key, which the nodes trust.
func labDataDir(t *testing.T, lab *testnodes.Lab, dir string) string {
	t.Helper()
	data := filepath.Join(dir, "data")
	key, err := os.ReadFile(lab.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(data, "ssh"), 0o700)
	os.WriteFile(filepath.Join(data, "ssh", "id_ed25519"), key, 0o600)
	os.WriteFile(filepath.Join(data, "ssh", "id_ed25519.pub"), []byte(lab.PublicKey+"\n"), 0o644)
	return data
}

// removeAppFromNode removes what an earlier run may have left of app on n.
func removeAppFromNode(t *testing.T, n testnodes.Node, app string) {
	t.Helper()
	testnodes.SSH(t, n, "h=/usr/local/lib/bakery/bakery-sudo; for s in blue green; do sudo -n $h systemctl stop "+app+" $s; sudo -n $h unit-remove "+app+" $s; done; sudo -n $h nginx-site-remove "+app+"; sudo -n $h nginx-reload; rm -rf /var/lib/bakery/apps/"+app)
}

// gitIn returns a function running git in dir (committing as a test
// user) and returning its trimmed output.
func gitIn(t *testing.T, dir string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.test", "-C", dir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
}

// exampleAppRepo copies the example app into dir/repo, commits it as v1
// and returns the repository, its git helper and the commit.
func exampleAppRepo(t *testing.T, dir string) (string, func(args ...string) string, string) {
	t.Helper()
	repo := filepath.Join(dir, "repo")
	if err := os.CopyFS(repo, os.DirFS("../../examples/hello/app")); err != nil {
		t.Fatal(err)
	}
	git := gitIn(t, repo)
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "v1")
	return repo, git, git("rev-parse", "HEAD")
}
