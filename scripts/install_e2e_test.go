//go:build e2e

package scripts_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/scripts/testnodes"
)

// TestE2EInstallControlPlane installs the control plane with
// install-control-plane.sh on a fresh node (a private scratch node booted
// with systemd): the service is active and answers through nginx, a
// second run changes nothing, a restart keeps every object, --uninstall
// keeps the data for a re-install, --uninstall --purge removes it. It
// logs the unit's `systemd-analyze security` exposure score.
func TestE2EInstallControlPlane(t *testing.T) {
	node := testnodes.Scratch(t)
	bin := filepath.Join(t.TempDir(), "bakery")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/bakery").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	exe := func(cmd string) string {
		t.Helper()
		out, err := testnodes.Exec(t, node.Name, cmd)
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		return out
	}
	put := func(path, file string) {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := testnodes.ExecInput(t, node.Name, "cat > "+path+" && chmod 755 "+path, b); err != nil {
			t.Fatalf("copy %s: %v\n%s", file, err, out)
		}
	}
	put("/root/bakery", bin)
	put("/root/install-control-plane.sh", "install-control-plane.sh")
	const install = "bash /root/install-control-plane.sh --binary /root/bakery --nginx bakery.example.test --git-safe-directory /srv/git/hello.git 2>&1"
	t0 := time.Now()
	out := exe(install)
	t.Logf("first install: %v\n%s", time.Since(t0), out)
	if got := strings.TrimSpace(exe("systemctl is-active bakery; stat -c '%a %U' /etc/bakery/bakery.env /var/lib/bakery-server; id -u bakery >/dev/null && echo user")); got != "active\n600 root\n700 bakery\nuser" {
		t.Fatalf("after install: %q", got)
	}
	token := strings.TrimSpace(exe("cat /var/lib/bakery-server/admin-token"))

	// Through nginx, from the host.
	hc := &http.Client{Timeout: 5 * time.Second}
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+node.Address+path, strings.NewReader(body))
		req.Host = "bakery.example.test"
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("GET", "/api/v1/version", ""); code != 200 || !strings.Contains(body, "file") {
		t.Fatalf("version through nginx: %d %s", code, body)
	}
	// State: a node and a secret (the generated key seals it).
	if code, body := call("POST", "/api/v1/nodes", `{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"web-1"},"spec":{"address":"192.0.2.10"}}`); code != 201 {
		t.Fatalf("create node: %d %s", code, body)
	}
	if code, body := call("POST", "/api/v1/secrets", `{"apiVersion":"bakery.dev/v1","kind":"Secret","metadata":{"name":"db"},"spec":{"data":{"PASSWORD":"canary-install-31f"}}}`); code != 201 {
		t.Fatalf("create secret: %d %s", code, body)
	}
	if g := exe("grep -rc canary-install /var/lib/bakery-server || true"); strings.Contains(g, ":1") {
		t.Errorf("the secret is stored in plain text:\n%s", g)
	}
	pid := exe("systemctl show -p MainPID --value bakery")

	// Idempotent: a second run changes nothing and does not restart.
	out = exe(install)
	if strings.Contains(out, "wrote") || strings.Contains(out, "installed") || !strings.Contains(out, "up to date") {
		t.Errorf("second run changed something:\n%s", out)
	}
	if p := exe("systemctl show -p MainPID --value bakery"); p != pid {
		t.Errorf("second run restarted the service (pid %s → %s)", pid, p)
	}

	// A restart (graceful stop, start) keeps all state.
	exe("systemctl restart bakery")
	waitReady := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if code, _ := call("GET", "/readyz", ""); code == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready:\n%s", exe("journalctl -u bakery --no-pager -n 50"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitReady()
	checkState := func(what string) {
		t.Helper()
		code, body := call("GET", "/api/v1/secrets/db", "")
		if code != 200 || !strings.Contains(body, `"PASSWORD"`) || strings.Contains(body, "canary") {
			t.Fatalf("%s: secret: %d %s", what, code, body)
		}
		if code, body := call("GET", "/api/v1/nodes/web-1", ""); code != 200 {
			t.Fatalf("%s: node: %d %s", what, code, body)
		}
	}
	checkState("after a restart")
	// (The first start prints the admin token once, by design, so the
	// journal holds it: docs/security.md says so.)
	if j := exe("journalctl -u bakery --no-pager -o cat"); strings.Contains(j, "canary-install") {
		t.Error("the journal shows a secret value")
	}

	// The hardened service really deploys: the node itself, over SSH, from
	// a root-owned repository, a secret in the app's environment.
	if code, body := call("POST", "/api/v1/nodes", `{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"self"},"spec":{"address":"`+node.Address+`","hostKey":"`+node.HostKey+`"}}`); code != 201 {
		t.Fatalf("create node self: %d %s", code, body)
	}
	code, body := call("GET", "/api/v1/nodes/self/bootstrap", "")
	var boot struct {
		PublicKey string `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(body), &boot); code != 200 || err != nil || !strings.HasPrefix(boot.PublicKey, "ssh-ed25519 ") {
		t.Fatalf("bootstrap: %d %s", code, body)
	}
	if out, err := testnodes.ExecInput(t, node.Name, "cat >> ~bakery-agent/.ssh/authorized_keys", []byte(boot.PublicKey+"\n")); err != nil {
		t.Fatalf("authorize the control plane: %v %s", err, out)
	}
	repo := filepath.Join(t.TempDir(), "hello")
	if err := os.CopyFS(repo, os.DirFS("../examples/hello/app")); err != nil {
		t.Fatal(err)
	}
	git := exec.Command("sh", "-c", `git init -q -b main && git add . && git -c user.name=t -c user.email=t@example.test commit -q -m v1 && git clone -q --bare . ../hello.git && tar -C .. -cf - hello.git`)
	git.Dir = repo
	tarball, err := git.Output()
	if err != nil {
		t.Fatalf("example repo: %v", err)
	}
	if out, err := testnodes.ExecInput(t, node.Name, "mkdir -p /srv/git && tar -C /srv/git -xf - && chown -R root:root /srv/git", tarball); err != nil {
		t.Fatalf("copy repo: %v %s", err, out)
	}
	if code, body := call("POST", "/api/v1/secrets", `{"apiVersion":"bakery.dev/v1","kind":"Secret","metadata":{"name":"greeting"},"spec":{"data":{"GREETING":"hello-installed"}}}`); code != 201 {
		t.Fatalf("create secret: %d %s", code, body)
	}
	app := `{"apiVersion":"bakery.dev/v1","kind":"Deployment","metadata":{"name":"hello"},"spec":{"source":{"repo":"/srv/git/hello.git"},"nodes":["self"],
"build":{"build":"node build.js"},"run":{"command":"node server.js","envFrom":[{"secretRef":"greeting"}]},"healthCheck":{"path":"/healthz","interval":"100ms","retries":50},
"ingress":{"hosts":["hello.install.test"]}}}`
	if code, body := call("POST", "/api/v1/deployments", app); code != 201 {
		t.Fatalf("create deployment: %d %s", code, body)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, body := call("GET", "/api/v1/deployments/hello", "")
		var d struct {
			Status struct {
				Conditions []struct{ Type, Status, Reason, Message string }
			}
		}
		json.Unmarshal([]byte(body), &d)
		ready := false
		for _, c := range d.Status.Conditions {
			ready = ready || c.Type == "Ready" && c.Status == "True"
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the installed control plane did not deploy: %s\n%s", body, exe("journalctl -u bakery --no-pager -n 30 -o cat"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", "http://"+node.Address+"/", nil)
	req.Host = "hello.install.test"
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(served), "hello-installed") {
		t.Fatalf("the app deployed by the installed control plane serves %q", served)
	}

	// Hardening.
	sec := exe("systemd-analyze security bakery.service --no-pager 2>&1 || true")
	m := regexp.MustCompile(`Overall exposure level for bakery.service: ([0-9.]+) (\S+)`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("systemd-analyze security:\n%s", sec)
	}
	var exposed []string
	for _, l := range strings.Split(sec, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "✗") {
			exposed = append(exposed, strings.Join(strings.Fields(l), " "))
		}
	}
	t.Logf("systemd-analyze security bakery.service: %s %s; settings still exposed:\n%s", m[1], m[2], strings.Join(exposed, "\n"))
	if m[2] != "OK" && m[2] != "SAFE" {
		t.Errorf("exposure %s %s, want OK or better:\n%s", m[1], m[2], sec)
	}

	// --uninstall keeps the data; installing again finds every object.
	out = exe("bash /root/install-control-plane.sh --uninstall 2>&1")
	if got := exe("systemctl is-active bakery || true; test -e /usr/local/bin/bakery && echo bin; test -e /etc/nginx/conf.d/bakery.conf && echo site; test -d /var/lib/bakery-server && echo data; test -f /etc/bakery/bakery.env && echo env"); strings.TrimSpace(got) != "inactive\ndata\nenv" {
		t.Fatalf("after --uninstall: %q\n%s", got, out)
	}
	exe(install)
	waitReady()
	checkState("after uninstall and install")

	// --purge removes everything.
	exe("bash /root/install-control-plane.sh --uninstall --purge 2>&1")
	if got := exe("test -d /var/lib/bakery-server && echo data; test -f /etc/bakery/bakery.env && echo env; id bakery 2>/dev/null && echo user; true"); strings.TrimSpace(got) != "" {
		t.Fatalf("after --purge: %q", got)
	}
	// The node's own directories (the host is also a node) are untouched.
	if got := exe("stat -c '%U %a' /var/lib/bakery /etc/bakery/env"); got != "bakery-agent 755\nroot 700\n" {
		t.Errorf("the node's directories after install and purge: %q", got)
	}
}
