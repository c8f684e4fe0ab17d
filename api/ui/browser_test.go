package ui_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/github/githubtest"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/ui/browsertest"
)

// TestBrowserPages drives the UI in headless Chromium without nodes: log
// in, every page at 390 and 1366 px (no sideways scrolling, screenshots
// in test-artifacts/ui), the spec editor (diff, then apply), the live log
// panel following lines as the store gets them (auto-scroll pausing when
// scrolled up, resuming), and logging out. No page may raise a script
// error or a CSP violation. The parts that need a control loop and nodes
// are TestE2EBrowser (cmd/bakery).
func TestBrowserPages(t *testing.T) {
	cut := &streamCutter{}
	gh := githubtest.Start(t)
	e := newEnvWith(t, "file", false, withGitHub(t, gh), cut.wrap)
	ctx := t.Context()
	n := node("web-1")
	n.Metadata.Labels = map[string]string{"role": "web"}
	e.create(n)
	o, _ := e.st.Get(ctx, api.KindNode, "web-1")
	n = o.(*api.Node)
	now := api.Now() // a *api.Time
	n.Status = api.NodeStatus{Reachable: true, LastHandshakeTime: now, OS: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0",
		Tools: []string{"git", "systemctl", "nginx"}, HostKeyFingerprint: "SHA256:9mQnZ0sExampleFingerprintAAAAAAAAAAAAAAAAAAAAAAAA",
		Disk: &api.DiskUsage{BakeryBytes: 120 << 20, FilesystemBytes: 40 << 30, FreeBytes: 12 << 30}}
	if _, err := e.st.UpdateStatus(ctx, n); err != nil {
		t.Fatal(err)
	}
	d := deployment("hello")
	d.Metadata.Labels = map[string]string{"team": "web"}
	d.Metadata.Annotations = map[string]string{"note": evil}
	d.Spec.Run.EnvFrom = []api.EnvFromSource{{SecretRef: "db"}} // secrets and traffic: seedTrafficAndSecrets
	e.create(d)
	o, _ = e.st.Get(ctx, api.KindDeployment, "hello")
	d = o.(*api.Deployment)
	d.Status = api.DeploymentStatus{Revision: 2, Commit: "4f1c2a9e0b7d35c6e8a1f0b2c3d4e5f607182930", ObservedGeneration: 1,
		Conditions: []api.Condition{
			{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: "RolloutSucceeded", Message: "revision 2 serves on 1 of 1 nodes"},
			{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: "Idle"},
			{Type: api.ConditionDegraded, Status: api.ConditionFalse, Reason: "Healthy"},
		},
		Nodes: []api.NodeAppStatus{{Node: "web-1", ActiveSlot: "green", Commit: "4f1c2a9e0b7d35c6e8a1f0b2c3d4e5f607182930", Port: 20001, Healthy: true, UnitState: "active"}}}
	if _, err := e.st.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
	var rs store.Rollouts = e.st
	ro := &api.Rollout{ID: "hello-2-4f1c2a9e", Deployment: "hello", Revision: 2, Trigger: api.TriggerApply, TriggeredBy: "user:alice",
		Commit: d.Status.Commit, State: api.RolloutRunning, CreatedAt: now}
	if err := rs.CreateRollout(ctx, ro); err != nil {
		t.Fatal(err)
	}
	seq := int64(0)
	appendLines := func(n int) {
		var ls []api.LogLine
		for range n {
			seq++
			node, stream := "web-1", api.StreamStdout
			if seq%3 == 0 {
				node = "web-2"
			}
			if seq%7 == 0 {
				stream = api.StreamStderr
			}
			ls = append(ls, api.LogLine{Seq: seq, Node: node, Stream: stream, Time: now, Text: fmt.Sprintf("build output line %d", seq)})
		}
		if err := rs.AppendLogs(ctx, ro.ID, ls); err != nil {
			t.Fatal(err)
		}
	}
	appendLines(5)

	seedTrafficAndSecrets(t, e)

	b := browsertest.Start(t)
	base := e.ts.URL
	// Log in through the form; the next= target is honoured.
	b.CheckWidths(base+"/ui/login", "login", "#login")
	b.Do(30*time.Second, "log in",
		chromedp.Navigate(base+"/ui/nodes"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SetValue(chromedp.CSS("#name"), testUser),
		chromedp.SetValue(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#nodes")),
	)

	for _, p := range []struct{ path, name, ready string }{
		{"/ui/deployments", "deployments", "#deployments"},
		{"/ui/deployments/hello", "deployment", "#rollouts"},
		{"/ui/nodes", "nodes", "#nodes"},
		{"/ui/nodes/new", "node-new", "#node-form"},
		{"/ui/nodes/web-1", "node", "#bootstrap-cmd, #verify"},
		{"/ui/editor", "editor-new", "#yaml"},
		{"/ui/editor?deployment=hello", "editor", "#yaml"},
		{"/ui/settings", "settings", "#tokens"},
		{"/ui/secrets", "secrets", "#secrets"},
		{"/ui/secrets/db", "secret", "#secret-keys"},
		{"/ui/deployments/hello?window=24h#traffic", "deployment-traffic-24h", "#traffic-chart"},
		{"/ui/nodes/no-such-node", "error", ".flash.err"},
	} {
		b.CheckWidths(base+p.path, p.name, p.ready)
	}
	if got := browsertest.Eval[bool](b, `typeof htmx === "object"`); !got {
		t.Fatal("htmx did not load")
	}
	checkTrafficChart(t, b, base)
	// Verify goes through htmx: the result is swapped into the page, which
	// stays where it is (this server has no control loop, so it says so).
	b.Do(30*time.Second, "verify via htmx",
		chromedp.Navigate(base+"/ui/nodes/web-1"),
		chromedp.Click(chromedp.CSS("#verify")),
		chromedp.WaitVisible(chromedp.CSS("#verify-status")),
	)
	if loc, msg := browsertest.Eval[string](b, `location.pathname`), browsertest.Eval[string](b, `document.querySelector("#verify-result").textContent`); loc != "/ui/nodes/web-1" || !strings.Contains(msg, "no control loop") {
		t.Fatalf("verify: at %s, result %q; want the fragment swapped in on /ui/nodes/web-1", loc, msg)
	}

	// The live log panel: stored lines, then new ones as they arrive.
	b.Do(30*time.Second, "deployment page", chromedp.EmulateViewport(1366, 900), chromedp.Navigate(base+"/ui/deployments/hello"))
	b.WaitJS(20*time.Second, "first lines", `document.querySelector("#log").textContent.includes("build output line 5")`)
	// The connection breaks after 10 of the next 60 lines: EventSource
	// reconnects with Last-Event-ID and the panel gets the rest, each line
	// once, in order.
	cut.arm(10)
	appendLines(60)
	b.WaitJS(20*time.Second, "live lines after a reconnect", `document.querySelector("#log").textContent.includes("build output line 65")`)
	if got := browsertest.Eval[string](b, `[...document.querySelectorAll("#log .line")].map(l => l.textContent.match(/line (\d+)/)[1]).join(",")`); got != seqList(1, 65) {
		t.Fatalf("log panel lines %s, want 1..65 each once in order", got)
	}
	if got := cut.lastEventIDs(); len(got) < 2 || got[len(got)-1] != "15" {
		t.Fatalf("Last-Event-ID of the stream requests: %q, want the reconnect to send 15", got)
	}
	if got := browsertest.Eval[string](b, `document.querySelector("#log-state").textContent`); got != "live" {
		t.Fatalf("log state %q, want live", got)
	}
	if !browsertest.Eval[bool](b, `(() => { const l = document.querySelector("#log"); return l.scrollHeight - l.scrollTop - l.clientHeight < 4 })()`) {
		t.Fatal("the panel did not follow the new lines")
	}
	// Two nodes get two colours.
	if got := browsertest.Eval[string](b, `[...new Set([...document.querySelectorAll("#log .line")].map(l => l.className.split(" ").find(c => /^n\d$/.test(c))))].sort().join(",")`); got != "n0,n1" {
		t.Fatalf("node colour classes %q, want n0,n1", got)
	}
	// Scrolled up, the panel stays put and offers to resume.
	browsertest.Eval[bool](b, `(() => { const l = document.querySelector("#log"); l.scrollTop = 0; l.dispatchEvent(new Event("scroll")); return true })()`)
	appendLines(20)
	b.WaitJS(20*time.Second, "lines while scrolled up", `document.querySelector("#log").textContent.includes("build output line 85")`)
	if top := browsertest.Eval[float64](b, `document.querySelector("#log").scrollTop`); top != 0 {
		t.Fatalf("scrolled-up panel moved to %v", top)
	}
	b.Do(10*time.Second, "resume", chromedp.WaitVisible(chromedp.CSS("#log-resume")), chromedp.Click(chromedp.CSS("#log-resume")))
	b.WaitJS(10*time.Second, "resumed at the bottom", `(() => { const l = document.querySelector("#log"); return l.scrollHeight - l.scrollTop - l.clientHeight < 4 })()`)
	b.Screenshot("deployment-live-log")
	// The rollout ends: the panel says so.
	ro.State, ro.Message = api.RolloutSucceeded, "revision 2 rolled out"
	if err := rs.UpdateRollout(ctx, ro); err != nil {
		t.Fatal(err)
	}
	b.WaitJS(20*time.Second, "end of the rollout", `document.querySelector("#log-state").textContent.startsWith("succeeded")`)
	// A rollout from the history, pinned: its whole log, no following.
	b.Do(30*time.Second, "pinned rollout",
		chromedp.Navigate(base+"/ui/deployments/hello?rollout="+ro.ID),
		chromedp.WaitVisible(chromedp.CSS("#log-follow")),
	)
	b.WaitJS(20*time.Second, "pinned rollout's log", `document.querySelectorAll("#log .line").length === 85 && document.querySelector("#log-state").textContent.startsWith("succeeded")`)

	// The editor: diff first (nothing stored), then apply.
	yaml := "apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata: {name: shop, labels: {team: web}}\nspec:\n  source: {repo: /srv/git/shop.git, ref: main}\n  nodes: [web-1]\n  run: {command: ./shop}\n"
	b.Do(30*time.Second, "diff",
		chromedp.Navigate(base+"/ui/editor"),
		chromedp.SetValue(chromedp.CSS("#yaml"), yaml),
		chromedp.Click(chromedp.CSS("#diff")),
		chromedp.WaitVisible(chromedp.CSS("#results")),
	)
	if txt := browsertest.Eval[string](b, `document.querySelector("#results").textContent`); !strings.Contains(txt, "created (dry run)") || !strings.Contains(txt, "+    command: ./shop") {
		t.Fatalf("diff shows:\n%s", txt)
	}
	b.Screenshot("editor-diff")
	if _, err := e.st.Get(ctx, api.KindDeployment, "shop"); err == nil {
		t.Fatal("diff stored the deployment")
	}
	b.Do(30*time.Second, "apply",
		chromedp.Click(chromedp.CSS("#apply")),
		chromedp.WaitVisible(chromedp.CSS("#rollouts")),
	)
	if h := browsertest.Eval[string](b, `document.querySelector("h1").textContent`); h != "Deployment shop" {
		t.Fatalf("after apply the page is %q", h)
	}
	// Bad input: the field path is shown next to the editor.
	b.Do(30*time.Second, "bad spec",
		chromedp.Navigate(base+"/ui/editor"),
		chromedp.SetValue(chromedp.CSS("#yaml"), strings.Replace(yaml, "ref: main", "ref: main, tag: x", 1)),
		chromedp.Click(chromedp.CSS("#apply")),
		chromedp.WaitVisible(chromedp.CSS("#problems")),
	)
	if txt := browsertest.Eval[string](b, `document.querySelector("#problems").textContent`); !strings.Contains(txt, "spec.source") {
		t.Fatalf("problems shown: %s", txt)
	}
	b.Screenshot("editor-error")

	// GitHub in the editor: sign in (the fake GitHub approves, its
	// callback brings the browser back to the editor), pick a repository
	// (htmx loads its branches), register the webhook, choose a branch and
	// put the choice into the spec: the YAML and the diff show it.
	b.Do(30*time.Second, "GitHub sign-in",
		chromedp.Navigate(base+"/ui/editor?deployment=hello"),
		chromedp.WaitVisible(chromedp.CSS("#gh-signin")),
		chromedp.Click(chromedp.CSS("#gh-signin")),
		chromedp.WaitVisible(chromedp.CSS("#gh-repo")),
	)
	if loc, msg := browsertest.Eval[string](b, `location.pathname + location.search`), browsertest.Eval[string](b, `document.querySelector(".flash.ok").textContent`); loc != "/ui/editor?deployment=hello&github=signed-in" || !strings.Contains(msg, "Signed in to GitHub") || gh.Authorized() != 1 {
		t.Fatalf("after the GitHub sign-in: at %s, message %q, %d sign-ins", loc, msg, gh.Authorized())
	}
	b.CheckWidths(base+"/ui/editor?deployment=hello", "editor-github", "#gh-repo")
	b.Do(30*time.Second, "pick a repository",
		chromedp.EmulateViewport(1366, 900),
		chromedp.Navigate(base+"/ui/editor?deployment=hello"),
		chromedp.WaitVisible(chromedp.CSS("#gh-repo")),
	)
	// htmx wires up swapped-in elements after the swap: wait for that
	// before using them.
	htmxReady := func(sel string) string {
		return `(() => { const e = document.querySelector(` + jsString(sel) + `); return !!(e && e["htmx-internal-data"] && !document.querySelector(".htmx-swapping, .htmx-settling, .htmx-request")) })()`
	}
	b.WaitJS(30*time.Second, "the repository list wired up", htmxReady("#gh-repo"))
	browsertest.Eval[bool](b, `(() => { const s = document.querySelector("#gh-repo"); s.value = "octo/app"; s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`)
	b.Do(30*time.Second, "branches", chromedp.WaitVisible(chromedp.CSS("#gh-branch")))
	if got := browsertest.Eval[string](b, `[...document.querySelectorAll("#gh-branch option")].map(o => o.value + (o.selected ? "*" : "")).join(",") + " " + document.querySelector("#gh-url").value`); got != "main*,dev git@github.example:octo/app.git" {
		t.Fatalf("branches and clone URL offered: %s", got)
	}
	b.WaitJS(30*time.Second, "the branch list wired up", htmxReady("#gh-hook-button"))
	browsertest.Eval[bool](b, `(() => { window.confirm = () => true; return true })()`)
	b.Do(30*time.Second, "register the webhook",
		chromedp.Click(chromedp.CSS("#gh-hook-button")),
		chromedp.WaitVisible(chromedp.CSS("#gh-hook-result")),
	)
	if txt := browsertest.Eval[string](b, `document.querySelector("#gh-hook-result").textContent`); !strings.Contains(txt, "Webhook 12345678 registered on octo/app") || len(gh.Hooks()) != 1 {
		t.Fatalf("webhook: %q, %d sent to GitHub", txt, len(gh.Hooks()))
	}
	b.Screenshot("editor-github-branches")
	browsertest.Eval[bool](b, `(() => { document.querySelector("#gh-branch").value = "dev"; return true })()`)
	b.Do(30*time.Second, "use in spec",
		chromedp.Click(chromedp.CSS("#gh-use")),
		chromedp.WaitVisible(chromedp.CSS("#results")),
	)
	if y := browsertest.Eval[string](b, `document.querySelector("#yaml").value`); !strings.Contains(y, "repo: git@github.example:octo/app.git") || !strings.Contains(y, "ref: dev") {
		t.Fatalf("the YAML after choosing octo/app dev:\n%s", y)
	}
	if txt := browsertest.Eval[string](b, `document.querySelector("#results").textContent`); !strings.Contains(txt, "+    ref: dev") || !strings.Contains(txt, "+    repo: git@github.example:octo/app.git") || !strings.Contains(txt, "-    ref: main") {
		t.Fatalf("the diff after choosing octo/app dev:\n%s", txt)
	}
	b.Screenshot("editor-github-diff")

	// The escaped <script> annotation is text on the page, never run.
	if got := browsertest.Eval[bool](b, `window.alertCalled === undefined`); !got {
		t.Fatal("a script ran")
	}

	// Log out: back at the login page, and the pages are closed.
	b.Do(30*time.Second, "log out",
		chromedp.Navigate(base+"/ui/settings"),
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.Navigate(base+"/ui/deployments"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
	)
	var ps []string
	for _, p := range b.Problems() {
		// The bad spec's page is answered 400 and the missing node's 404
		// on purpose, and the log stream is cut on purpose.
		if !strings.Contains(p, "status of 400") && !strings.Contains(p, "status of 404") && !strings.Contains(p, "ERR_INCOMPLETE_CHUNKED_ENCODING") {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		t.Fatalf("the browser reported problems:\n%s", strings.Join(ps, "\n"))
	}
}

func seqList(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		if i > from {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

// streamCutter breaks a rollout log stream once, when armed: the write that
// carries the next lines is cut after n events and the connection dropped,
// as a proxy restart would. It records each stream request's Last-Event-ID.
type streamCutter struct {
	mu    sync.Mutex
	n     int // events to let through before the cut; 0: not armed
	sent  int // events let through since arm
	ids   []string
	fired bool
}

func (c *streamCutter) arm(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.sent = n, 0
}

func (c *streamCutter) lastEventIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...)
}

func (c *streamCutter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/ui/rollouts/") {
			h.ServeHTTP(w, r)
			return
		}
		c.mu.Lock()
		c.ids = append(c.ids, r.Header.Get("Last-Event-ID"))
		c.mu.Unlock()
		h.ServeHTTP(&cutWriter{ResponseWriter: w, c: c}, r)
	})
}

type cutWriter struct {
	http.ResponseWriter
	c *streamCutter
}

func (w *cutWriter) Write(b []byte) (int, error) {
	// The cut comes after exactly n events since arm, however the server
	// batches them into writes (under load a batch may be small).
	w.c.mu.Lock()
	k := bytes.Count(b, []byte("event: line"))
	armed := w.c.n > 0 && !w.c.fired
	left := w.c.n - w.c.sent
	fire := armed && k > left
	if fire {
		w.c.fired = true
	} else if armed {
		w.c.sent += k
	}
	w.c.mu.Unlock()
	if !fire {
		return w.ResponseWriter.Write(b)
	}
	end := 0
	for range left {
		end += bytes.Index(b[end:], []byte("\n\n")) + 2
	}
	w.ResponseWriter.Write(b[:end])
	http.NewResponseController(w.ResponseWriter).Flush()
	panic(http.ErrAbortHandler) // drop the connection mid-batch
}

func (w *cutWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
