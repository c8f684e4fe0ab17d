package ui_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/api/ui/browsertest"
	"bakery.dev/bakery/reconciler/analytics"
	"bakery.dev/bakery/sshexec"
)

// localConnector runs the analytics script of every node on this machine:
// the tests keep "nodes" as directories.
type localConnector struct{}

func (localConnector) Executor(node, via *api.Node) sshexec.Executor { return sshexec.NewLocal() }
func (localConnector) HostKey(node, via *api.Node) (string, bool)    { return "", false }
func (localConnector) Forget(node, via *api.Node)                    {}

// onNode is a store whose deployments run on node alone, so that one
// collection reads one node's directory.
type onNode struct {
	store.Store
	node string
}

func (s onNode) List(ctx context.Context, kind string, opts store.ListOptions) ([]api.Object, error) {
	objs, err := s.Store.List(ctx, kind, opts)
	for _, o := range objs {
		if d, ok := o.(*api.Deployment); ok {
			d.Status.Nodes = []api.NodeAppStatus{{Node: s.node}}
		}
	}
	return objs, err
}

// accessLine is a line of the access log format Bakery configures for
// nginx: $msec|$status|$body_bytes_sent|$request_time.
func accessLine(at time.Time, status, bytes int, secs float64) string {
	return fmt.Sprintf("%.3f|%d|%d|%.3f\n", float64(at.UnixMilli())/1000, status, bytes, secs)
}

// collectOn runs the control plane's real analytics collection for one
// node whose access log of app holds log, and whose app directory holds
// releases and a git mirror of the given sizes. It returns the log's size.
func collectOn(t *testing.T, st store.Store, node, app, log string, releases, repo int) int {
	t.Helper()
	dir := t.TempDir()
	for sub, size := range map[string]int{"releases/r1/blob": releases, "repo.git/pack": repo} {
		p := filepath.Join(dir, app, sub)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bakery-"+app+".access"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &analytics.Collector{Store: onNode{st, node}, Settings: st.(store.Settings), Connector: localConnector{}, LogDir: dir, AppsDir: dir}
	s, err := a.Collect(t.Context())
	if err != nil || s.Nodes[node].Err != nil || s.Nodes[node].Apps != 1 {
		t.Fatalf("collect on %s: %v %+v", node, err, s)
	}
	return len(log)
}

var (
	rowRE  = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	cellRE = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	tagRE  = regexp.MustCompile(`(?s)<title>.*?</title>|<[^>]*>`)
)

// tableRows returns the body rows of the table with id, cells joined by
// "|", tags removed and space trimmed.
func tableRows(t *testing.T, body, id string) []string {
	t.Helper()
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no table #%s in:\n%s", id, body)
	}
	tbl := body[i:]
	tbl = tbl[strings.Index(tbl, "<tbody>"):strings.Index(tbl, "</tbody>")]
	var out []string
	for _, m := range rowRE.FindAllStringSubmatch(tbl, -1) {
		var cells []string
		for _, c := range cellRE.FindAllStringSubmatch(m[1], -1) {
			cells = append(cells, strings.Join(strings.Fields(tagRE.ReplaceAllString(c[1], " ")), " "))
		}
		out = append(out, strings.Join(cells, "|"))
	}
	return out
}

// TestTrafficCard: the deployment page shows what the analytics stored,
// collected from real access-log lines by the real collector: the numbers
// of `bakery top` per node and in total, a chart whose bars are scaled to
// the busiest minute, and each node's disk usage — in both stores. Before
// any collection the card says that nothing was measured yet.
func TestTrafficCard(t *testing.T) {
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			e := newEnvOn(t, kind, false)
			e.create(node("web-1"))
			e.create(node("web-2"))
			e.create(deployment("hello"))
			b := e.loggedIn()

			code, body, _ := b.get("/ui/deployments/hello")
			if code != http.StatusOK || !strings.Contains(body, `id="traffic-empty"`) || !strings.Contains(body, "No traffic measured yet") || strings.Contains(body, "<svg") {
				t.Fatalf("before any collection: %d, want the empty traffic card\n%s", code, body)
			}

			now := time.Now()
			var log1, log2 string
			for range 10 {
				log1 += accessLine(now.Add(-2*time.Minute), 200, 100, 0.004)
			}
			log1 += accessLine(now.Add(-2*time.Minute), 404, 50, 0.004) + accessLine(now.Add(-2*time.Minute), 404, 50, 0.004)
			log1 += accessLine(now.Add(-2*time.Minute), 500, 0, 0.3)
			for range 6 {
				log1 += accessLine(now.Add(-40*time.Minute), 301, 0, 0.012)
			}
			for range 4 {
				log2 += accessLine(now.Add(-time.Minute), 200, 1000, 0.045)
			}
			size1 := collectOn(t, e.st, "web-1", "hello", log1, 3<<20, 1<<20)
			size2 := collectOn(t, e.st, "web-2", "hello", log2, 2<<20, 1<<20)

			code, body, _ = b.get("/ui/deployments/hello")
			if code != http.StatusOK {
				t.Fatalf("deployment page: %d\n%s", code, body)
			}
			want := []string{
				"web-1|5m|13|0.04|0|10|0|2|1|1.1 KiB|≤5ms|≤5ms|≤500ms",
				"|1h|19|0.01|0|10|6|2|1|1.1 KiB|≤5ms|≤20ms|≤500ms",
				"web-2|5m|4|0.01|0|4|0|0|0|3.9 KiB|≤50ms|≤50ms|≤50ms",
				"|1h|4|0.00|0|4|0|0|0|3.9 KiB|≤50ms|≤50ms|≤50ms",
				"all nodes|5m|17|0.06|0|14|0|2|1|5.0 KiB|≤5ms|≤50ms|≤500ms",
				"|1h|23|0.01|0|14|6|2|1|5.0 KiB|≤5ms|≤50ms|≤500ms",
			}
			if got := tableRows(t, body, "traffic-numbers"); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("traffic numbers:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			disk := tableRows(t, body, "traffic-disk")
			wantDisk := []string{
				fmt.Sprintf("web-1|max 13|3.0 MiB|1.0 MiB|%d B|–|", size1),
				fmt.Sprintf("web-2|max 4|2.0 MiB|1.0 MiB|%d B|–|", size2),
			}
			for i, w := range wantDisk {
				if i >= len(disk) || !strings.HasPrefix(disk[i], w) || !(strings.HasSuffix(disk[i], "s ago") || strings.HasSuffix(disk[i], "just now")) {
					t.Errorf("disk row %d: %q, want %q… ago (all rows: %q)", i, disk, w, disk)
				}
			}
			// The chart: one bar per busy minute of the hour, the busiest
			// (13 requests) full height, stacked 10 ok + 2 4xx + 1 5xx.
			i, j := strings.Index(body, `id="traffic-chart"`), strings.Index(body, "</figure>")
			if i < 0 || j < i {
				t.Fatalf("no chart:\n%s", body)
			}
			ch := body[i:j]
			if n := strings.Count(ch, `<g class="bar">`); n != 3 {
				t.Errorf("chart bars: %d, want 3 (busy minutes)\n%s", n, ch)
			}
			for _, s := range []string{
				"13 requests (2 4xx, 1 5xx)", "4 requests (0 4xx, 0 5xx)", "6 requests (0 4xx, 0 5xx)",
				`class="c-ok" x="`, `height="92.31"`, `class="c-4xx"`, `height="18.46"`, `class="c-5xx"`, `height="9.23"`,
				"23 in 1h, peak 13 per minute",
			} {
				if !strings.Contains(ch, s) {
					t.Errorf("chart lacks %q:\n%s", s, ch)
				}
			}
			if strings.Contains(body, " style=") {
				t.Error("inline style on the page (the CSP forbids it)")
			}

			// The 24h window: buckets of 15 minutes; the htmx refresh
			// answers the card alone.
			code, frag, _ := b.get("/ui/deployments/hello/traffic?window=24h")
			if code != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(frag), `<section class="card" id="traffic"`) || strings.Contains(frag, "<html") ||
				!strings.Contains(frag, "Requests per 15 minutes") || !strings.Contains(strings.Join(tableRows(t, frag, "traffic-numbers"), "\n"), "\n|24h|23|0.00|0|14|6|2|1|5.0 KiB|") {
				t.Errorf("24h fragment: %d\n%s", code, frag)
			}
			if code, _, _ := b.get("/ui/deployments/no-such/traffic"); code != http.StatusNotFound {
				t.Errorf("traffic of a missing deployment: %d, want 404", code)
			}
		})
	}
}

// seedTrafficAndSecrets stores, for TestBrowserPages, an hour of traffic
// of deployment hello on web-1 and web-2 (collected by the real
// collector) and secrets db (used by hello) and tokens. The secrets are
// sealed with a key of their own: the pages show keys only, so the server
// needs none to list them.
func seedTrafficAndSecrets(t *testing.T, e *env) {
	t.Helper()
	e.create(node("web-2"))
	now := time.Now()
	for i, n := range []string{"web-1", "web-2"} {
		var log strings.Builder
		for m := range 60 {
			at := now.Add(-time.Duration(59-m) * time.Minute)
			ok := 12 + (m*37+i*11)%25 + m/4
			for range ok {
				log.WriteString(accessLine(at, []int{200, 200, 200, 304}[m%4], 2400+m*10, 0.002+float64(m%9)/200))
			}
			if m%7 == 3 {
				for range 4 + i {
					log.WriteString(accessLine(at, 404, 150, 0.001))
				}
			}
			if m%17 == 5 {
				log.WriteString(accessLine(at, 502, 0, 1.2))
			}
		}
		collectOn(t, e.st, n, "hello", log.String(), (40+i*3)<<20, 9<<20)
	}
	kr, err := sealed.ParseKeyring(sealed.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	for name, keys := range map[string][]string{"db": {"PASSWORD", "USER", "HOST"}, "tokens": {"STRIPE_API_TOKEN"}} {
		sec := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindSecret}, Metadata: api.ObjectMeta{Name: name}, Spec: api.SecretSpec{Sealed: map[string]string{}}}
		for _, k := range keys {
			b, err := kr.Seal([]byte("browser-canary-"+k), api.SecretAD(name, k))
			if err != nil {
				t.Fatal(err)
			}
			sec.Spec.Sealed[k] = base64.StdEncoding.EncodeToString(b)
		}
		e.create(sec)
	}
}

// checkTrafficChart looks at the traffic card in the browser: the chart
// has a bar for each of the 60 minutes, drawn in the colours of the CSS
// file (classes, no inline style: the CSP would block it), spanning the
// card's width, and the card refreshes through htmx. Then the secrets
// pages: no secret value anywhere in their DOM, and deleting a secret
// asks for a confirmation first.
func checkTrafficChart(t *testing.T, b *browsertest.Browser, base string) {
	t.Helper()
	b.Do(30*time.Second, "traffic card",
		chromedp.EmulateViewport(1366, 900),
		chromedp.Navigate(base+"/ui/deployments/hello"),
		chromedp.WaitVisible(chromedp.CSS("#traffic-chart svg")),
	)
	got := browsertest.Eval[string](b, `(() => {
		const svg = document.querySelector("#traffic-chart svg");
		const card = document.querySelector("#traffic");
		const ok = svg.querySelector("rect.c-ok"), bad = svg.querySelector("rect.c-5xx");
		return [svg.querySelectorAll("g.bar").length, getComputedStyle(ok).fill, bad ? getComputedStyle(bad).fill : "none",
			Math.round(svg.getBoundingClientRect().width) >= Math.round(card.clientWidth * 0.9), svg.getBoundingClientRect().height > 60].join(" ")
	})()`)
	if want := "60 rgb(59, 127, 196) rgb(200, 65, 58) true true"; got != want {
		t.Errorf("traffic chart in the browser: %q, want %q", got, want)
	}
	if rows := browsertest.Eval[int](b, `document.querySelectorAll("#traffic-numbers tbody tr").length`); rows != 6 {
		t.Errorf("traffic numbers: %d rows, want 6 (two nodes and all, 5 min and 1 h)", rows)
	}
	b.Screenshot("deployment-traffic")
	// The card's own refresh (htmx, every 30 s) swaps in the fragment:
	// done here at once through htmx's API.
	browsertest.Eval[bool](b, `(() => { document.querySelector("#traffic").dataset.old = "1"; htmx.ajax("GET", "/ui/deployments/hello/traffic?window=1h", {target: "#traffic", swap: "outerHTML"}); return true })()`)
	b.WaitJS(10*time.Second, "traffic card refreshed", `document.querySelectorAll("#traffic").length === 1 && !document.querySelector("#traffic").dataset.old && document.querySelectorAll("#traffic-chart g.bar").length === 60 && document.querySelector("#traffic").getAttribute("hx-trigger") === "every 30s"`)
	for _, p := range []string{"/ui/secrets", "/ui/secrets/db"} {
		b.Do(30*time.Second, p, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS("#secret-form")))
		if browsertest.Eval[bool](b, `document.documentElement.outerHTML.includes("browser-canary")`) {
			t.Errorf("%s: a secret value is in the page", p)
		}
	}
	// Deleting a secret asks first: declined, nothing happens; accepted,
	// the list comes back without it.
	b.Do(30*time.Second, "secret tokens", chromedp.Navigate(base+"/ui/secrets/tokens"), chromedp.WaitVisible(chromedp.CSS("#delete-secret")))
	browsertest.Eval[bool](b, `(() => { window.asked = ""; window.confirm = m => { window.asked = m; return false }; return true })()`)
	b.Do(10*time.Second, "decline", chromedp.Click(chromedp.CSS("#delete-secret")))
	if asked, at := browsertest.Eval[string](b, `window.asked`), browsertest.Eval[string](b, `location.pathname`); asked != "Delete secret tokens?" || at != "/ui/secrets/tokens" {
		t.Fatalf("declined delete: asked %q, at %s", asked, at)
	}
	browsertest.Eval[bool](b, `(() => { window.confirm = () => true; return true })()`)
	b.Do(30*time.Second, "accept", chromedp.Click(chromedp.CSS("#delete-secret")), chromedp.WaitVisible(chromedp.CSS(".flash.ok")))
	if txt := browsertest.Eval[string](b, `location.pathname + " " + document.querySelector(".flash.ok").textContent + " " + document.querySelectorAll("#secrets a[href='/ui/secrets/tokens']").length`); txt != "/ui/secrets Secret tokens deleted. 0" {
		t.Fatalf("after the accepted delete: %q", txt)
	}
}
