//go:build e2e

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"bakery.dev/bakery/api/ui/browsertest"
	"bakery.dev/bakery/scripts/testnodes"
)

// TestE2EBrowser drives the web UI of the real binary in headless
// Chromium against a real test node: create the first user through the
// printed setup link, log out and in, create a node and verify it, create
// a deployment in the editor (diff, then apply), watch the live log panel
// receive the rollout's lines, deploy a second commit, press Rollback and
// see the page update, read the runtime log, delete the deployment and
// log out. Screenshots go to test-artifacts/ui/e2e-*.png.
func TestE2EBrowser(t *testing.T) {
	lab := testnodes.Require(t)
	node := testnodes.RequireNodes(t, 1)[0]
	home := isolate(t)
	tmp := t.TempDir()
	bin := buildBakery(t, tmp)
	data := labDataDir(t, lab, tmp)
	const app = "uitest"
	removeAppFromNode(t, node, app)

	repo, git, c1 := exampleAppRepo(t, tmp)

	env := append(os.Environ(), "XDG_CONFIG_HOME="+home, "DATABASE_URL=", "BAKERY_SERVER=", "BAKERY_TOKEN=")
	// A long resync: only Deploy now may find the second commit below (a
	// resync every 500 ms could find it first, and its rollout would be
	// the controller's); everything else here is event-driven.
	srv := startServer(t, bin, data, env, "--resync", "1m")
	var setup string
	deadline := time.Now().Add(10 * time.Second)
	for setup == "" && time.Now().Before(deadline) {
		if m := regexp.MustCompile(`(http://\S+/ui/setup\?token=\S+)`).FindStringSubmatch(srv.logs.String()); m != nil {
			setup = m[1]
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if setup == "" {
		t.Fatalf("the server printed no setup link:\n%s", srv.logs.String())
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nserver log:\n%s", append(args, srv.logs.String())...)
	}

	b := browsertest.Start(t)
	text := func(sel string) string {
		return browsertest.Eval[string](b, `(document.querySelector(`+jsString(sel)+`) || {}).textContent || ""`)
	}
	const user, password = "admin", "a long enough password"
	b.CheckWidths(setup, "setup", "#create") // a GET does not use the link up
	b.Do(30*time.Second, "setup: first user",
		chromedp.EmulateViewport(1366, 900),
		chromedp.Navigate(setup),
		chromedp.SetValue(chromedp.CSS("#name"), user),
		chromedp.SetValue(chromedp.CSS("#password"), password),
		chromedp.SetValue(chromedp.CSS("#password2"), password),
		chromedp.Click(chromedp.CSS("#create")),
		chromedp.WaitVisible(chromedp.CSS("#new-deployment")),
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SetValue(chromedp.CSS("#name"), user),
		chromedp.SetValue(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#new-deployment")),
	)

	// A node, created in the form, verified against the real node.
	b.Do(30*time.Second, "create node",
		chromedp.Navigate(srv.url+"/ui/nodes/new"),
		chromedp.SetValue(chromedp.CSS("#f-name"), node.Name),
		chromedp.SetValue(chromedp.CSS("#f-address"), node.Address),
		chromedp.SetValue(chromedp.CSS("#f-port"), fmt.Sprint(node.Port)),
		chromedp.SetValue(chromedp.CSS("#f-user"), node.User),
		chromedp.SetValue(chromedp.CSS("#f-hostkey"), node.HostKey),
		chromedp.SetValue(chromedp.CSS("#f-labels"), "role=web"),
		chromedp.Click(chromedp.CSS("#save-node")),
		chromedp.WaitVisible(chromedp.CSS("#bootstrap-cmd")),
	)
	if cmd := text("#bootstrap-cmd"); !strings.Contains(cmd, srv.url+"/install-node-agent.sh | sudo bash -s -- --key '"+lab.PublicKey+"'") {
		fail("bootstrap command: %q", cmd)
	}
	b.Do(60*time.Second, "verify node",
		chromedp.Click(chromedp.CSS("#verify")),
		chromedp.WaitVisible(chromedp.CSS("#verify-status")),
	)
	if st, msg := text("#verify-status"), text("#verify-result"); st != "ready" || !strings.Contains(msg, "bakery-ready") {
		fail("verify: %q %q", st, msg)
	}
	b.Screenshot("e2e-node-verified")

	// A deployment from the editor: diff, then apply.
	spec := fmt.Sprintf(`apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: %s, labels: {team: web}}
spec:
  source: {repo: %s, ref: main}
  nodes: [%s]
  build: {test: node --test, build: sleep 3 && node build.js}
  run: {command: node server.js}
  healthCheck: {path: /healthz, interval: 200ms, retries: 50}
  ingress: {hosts: [uitest.example.test]}
  strategy: {drain: 1s}
`, app, repo, node.Name)
	b.Do(30*time.Second, "editor diff",
		chromedp.Navigate(srv.url+"/ui/editor"),
		chromedp.SetValue(chromedp.CSS("#yaml"), spec),
		chromedp.Click(chromedp.CSS("#diff")),
		chromedp.WaitVisible(chromedp.CSS("#results")),
	)
	if d := text("#results"); !strings.Contains(d, "created (dry run)") || !strings.Contains(d, "+    command: node server.js") {
		fail("diff: %s", d)
	}
	b.Screenshot("e2e-editor-diff")
	b.Do(30*time.Second, "editor apply",
		chromedp.Click(chromedp.CSS("#apply")),
		chromedp.WaitVisible(chromedp.CSS("#rollouts")),
	)
	// The live log panel gets the rollout's lines while it runs.
	b.WaitJS(60*time.Second, "log lines during the rollout",
		`document.querySelectorAll("#log .line").length > 0 && document.querySelector("#log-state").textContent === "live"`)
	b.Screenshot("e2e-rollout-live")
	b.WaitJS(3*time.Minute, "first rollout succeeded", `document.querySelector("#log-state").textContent.startsWith("succeeded")`)
	if l := text("#log"); !strings.Contains(l, "health check passed") {
		fail("rollout log lacks the health check:\n%s", l)
	}
	b.WaitJS(30*time.Second, "Ready", `document.querySelector("#phase").textContent === "Ready"`)
	// Rollouts name who asked: the user who applied the spec, deployed,
	// rolled back (not "controller").
	newest := `(() => { const r = document.querySelector("#rollouts tbody tr"); return r ? [...r.children].slice(0, 3).map(c => c.textContent).join(" ") : "" })()`
	b.WaitJS(30*time.Second, "the first rollout names the applier", newest+` === "1 apply user:admin"`)

	// A second commit with Deploy now, then Rollback (both confirmed).
	os.WriteFile(filepath.Join(repo, "NOTE"), []byte("v2\n"), 0o644)
	git("add", ".")
	git("commit", "-q", "-m", "v2")
	c2 := git("rev-parse", "HEAD")
	b.Do(30*time.Second, "deploy now", chromedp.Click(chromedp.CSS("#action-deploy")))
	b.WaitJS(30*time.Second, "deploy started", `location.search === "?done=deploy" && document.readyState === "complete"`)
	b.WaitJS(3*time.Minute, "revision 2 rolled out",
		`(() => { const r = document.querySelector("#rollouts tbody tr"); return r && r.children[0].textContent === "2" && r.textContent.includes("succeeded") })()`)
	if got := text("#status .mono"); !strings.HasPrefix(c2, got) {
		fail("commit after deploy: %q, want %s", got, c2)
	}
	b.WaitJS(30*time.Second, "deploy now names the user", newest+` === "2 deploy-now user:admin"`)
	b.Do(30*time.Second, "rollback", chromedp.Click(chromedp.CSS("#action-rollback")))
	b.WaitJS(30*time.Second, "rollback started", `location.search === "?done=rollback" && document.readyState === "complete"`)
	b.WaitJS(3*time.Minute, "the page shows the rollback",
		`(() => { const r = document.querySelector("#rollouts tbody tr"); return r && r.querySelector(".trigger").textContent === "rollback" && r.textContent.includes("succeeded") })()`)
	b.WaitJS(30*time.Second, "the rollback names the user", newest+` === "3 rollback user:admin"`)
	b.WaitJS(30*time.Second, "the commit is the first again", `document.querySelector("#status .mono").textContent === `+jsString(c1[:12]))
	b.WaitJS(60*time.Second, "the log panel follows the rollback",
		`document.querySelector("#log-state").textContent.startsWith("succeeded") && document.querySelector("#log-title").textContent.includes("rollout ")`)
	b.Screenshot("e2e-after-rollback")

	// The runtime log: the app's journal on the node.
	b.Do(30*time.Second, "runtime log tab", chromedp.Click(chromedp.CSS("#tab-runtime")))
	b.WaitJS(60*time.Second, "runtime log lines", `document.querySelector("#runtime").textContent.includes("listening on 127.0.0.1:")`)
	b.Screenshot("e2e-runtime-log")

	// Delete from the UI: the app is removed from the node, then the object.
	b.Do(30*time.Second, "delete deployment", chromedp.Click(chromedp.CSS("#delete-deployment")), chromedp.WaitVisible(chromedp.CSS("#new-deployment")))
	deadline = time.Now().Add(2 * time.Minute)
	for {
		b.Do(30*time.Second, "deployments list", chromedp.Navigate(srv.url+"/ui/deployments"), chromedp.WaitVisible(chromedp.CSS("#new-deployment")))
		if !strings.Contains(text("main"), app) {
			break
		}
		if time.Now().After(deadline) {
			fail("deployment %s still listed 2 minutes after delete", app)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if out, _ := testnodes.SSH(t, node, "ls /var/lib/bakery/apps/"); strings.Contains(out, app) {
		fail("the app is still on the node after delete: %s", out)
	}
	b.Do(30*time.Second, "log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login")))
	var ps []string
	for _, p := range b.Problems() {
		// An SSE stream cut by a page change, or the runtime log's
		// stream ending, is not a page error.
		if !strings.Contains(p, "ERR_INCOMPLETE_CHUNKED_ENCODING") && !strings.Contains(p, "net::ERR_ABORTED") {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		fail("the browser reported problems:\n%s", strings.Join(ps, "\n"))
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "\"" + strings.NewReplacer("\\", "\\\\", "\"", "\\\"", "\n", "\\n").Replace(s) + "\""
}
