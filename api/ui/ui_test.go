package ui_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/ui"
)

const (
	testUser     = "alice"
	testPassword = "correct horse battery"
	setupToken   = "setup-token-for-the-test-0123456789"
)

// clock is a settable clock for session expiry and rate limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testStore is what the tests need of a store: both stores provide it.
type testStore interface {
	store.Store
	store.Accounts
	store.Rollouts
}

func TestMain(m *testing.M) { pgtest.Main(m) }

type env struct {
	t     *testing.T
	st    testStore
	ts    *httptest.Server
	clock *clock
}

// newEnv starts the API server with the UI on a fresh file store holding
// user alice. Without users when noUser.
func newEnv(t *testing.T, noUser bool) *env { return newEnvOn(t, "file", noUser) }

// wrapHandler, when set by a test before newEnv, wraps the server's
// handler (to cut connections).
type wrapHandler func(http.Handler) http.Handler

// stores are the stores the account tests run on.
var stores = []string{"file", "postgres"}

// newEnvOn is newEnv on the store kind ("file" or "postgres").
func newEnvOn(t *testing.T, kind string, noUser bool, wrap ...wrapHandler) *env {
	t.Helper()
	return newEnvWith(t, kind, noUser, nil, wrap...)
}

// newEnvWith is newEnvOn with the server's configuration changed by conf.
// mounted is cfg's UI for the server sc configures, as cmd/bakery builds
// it: cookies Secure behind an https public URL, GitHub offered when the
// server has the integration.
func mounted(cfg ui.Config, sc server.Config) func(http.Handler, *auth.Auth) (http.Handler, error) {
	cfg.PublicURL = sc.PublicURL
	cfg.GitHub = sc.GitHub != nil && sc.GitHub.ClientID != ""
	return cfg.Mount
}

func newEnvWith(t *testing.T, kind string, noUser bool, conf func(*server.Config), wrap ...wrapHandler) *env {
	t.Helper()
	var st testStore
	switch kind {
	case "file":
		fs, err := filestore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		st = fs
	case "postgres":
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		ps, err := pgstore.Open(ctx, pgtest.DatabaseURL(t))
		if err != nil {
			t.Fatal(err)
		}
		st = ps
	default:
		t.Fatalf("unknown store %q", kind)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Now()}
	cfg := ui.Config{Now: clk.Now, Notify: []string{"https://hooks.example (slack, failures)"}}
	if noUser {
		cfg.SetupToken = setupToken
	} else if err := auth.CreateUser(t.Context(), st, testUser, testPassword, bcrypt.MinCost, clk.Now()); err != nil {
		t.Fatal(err)
	}
	sc := server.Config{Store: st, Logger: slog.New(slog.DiscardHandler), Auth: auth.Config{
		BcryptCost: bcrypt.MinCost, Now: clk.Now,
		LoginFailures: 3, LoginWindow: time.Minute, SessionTTL: time.Hour,
	}}
	if conf != nil {
		conf(&sc)
	}
	sc.UI = mounted(cfg, sc)
	srv, err := server.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	for _, w := range wrap {
		h = w(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &env{t: t, st: st, ts: ts, clock: clk}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects.
type browser struct {
	e    *env
	hc   *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) (int, string, http.Header) {
	b.e.t.Helper()
	resp, err := b.hc.Get(b.e.ts.URL + path)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body), resp.Header
}

// post sends a form; the csrf field is added unless form has one (an
// empty one is removed).
func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	} else if form.Get("csrf") == "" {
		form.Del("csrf")
	}
	resp, err := b.hc.PostForm(b.e.ts.URL+path, form)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) login(name, pw string) (int, string) {
	b.e.t.Helper()
	b.get("/ui/login")
	code, body, _ := b.post("/ui/login", url.Values{"name": {name}, "password": {pw}})
	if code == http.StatusSeeOther {
		b.get("/ui/settings") // picks up the session's CSRF token
	}
	return code, body
}

func (e *env) loggedIn() *browser {
	e.t.Helper()
	b := e.browser()
	if code, body := b.login(testUser, testPassword); code != http.StatusSeeOther {
		e.t.Fatalf("login: %d\n%s", code, body)
	}
	return b
}

func (e *env) create(o api.Object) {
	e.t.Helper()
	if _, err := e.st.Create(e.t.Context(), o); err != nil {
		e.t.Fatal(err)
	}
}

func deployment(name string) *api.Deployment {
	d := &api.Deployment{}
	d.APIVersion, d.Kind = api.APIVersion, api.KindDeployment
	d.Metadata.Name = name
	d.Spec.Source = api.Source{Repo: "/srv/git/" + name + ".git", Ref: "main"}
	d.Spec.Nodes = []string{"web-1"}
	d.Spec.Run.Command = "./server"
	return d
}

func node(name string) *api.Node {
	n := &api.Node{}
	n.APIVersion, n.Kind = api.APIVersion, api.KindNode
	n.Metadata.Name = name
	n.Spec.Address = "10.0.0.5"
	return n
}

// getPages and postRoutes are every UI route (the test objects exist).
var getPages = []string{
	"/ui/", "/ui/nodes", "/ui/nodes/new", "/ui/nodes/web-1", "/ui/deployments", "/ui/deployments/hello",
	"/ui/deployments/hello/status", "/ui/deployments/hello/current-rollout", "/ui/editor", "/ui/editor?deployment=hello",
	"/ui/settings", "/ui/rollouts/hello-1/stream", "/ui/deployments/hello/logs/stream",
}

var postRoutes = []string{
	"/ui/logout", "/ui/nodes", "/ui/nodes/web-1", "/ui/nodes/web-1/delete", "/ui/nodes/web-1/verify",
	"/ui/deployments/hello/actions/deploy", "/ui/deployments/hello/actions/redeploy",
	"/ui/deployments/hello/actions/restart", "/ui/deployments/hello/actions/rollback",
	"/ui/deployments/hello/delete", "/ui/editor", "/ui/settings/users", "/ui/settings/users/bob/delete",
	"/ui/settings/tokens", "/ui/settings/tokens/admin/delete",
}

func (e *env) seed() {
	e.create(node("web-1"))
	e.create(deployment("hello"))
	e.st.CreateToken(e.t.Context(), store.Token{Name: "admin", Hash: auth.HashToken("bkr_x"), CreatedAt: time.Now()})
}

func TestPagesNeedLogin(t *testing.T) {
	e := newEnv(t, false)
	e.seed()
	b := e.browser()
	for _, p := range getPages {
		code, _, h := b.get(p)
		if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login?next=") {
			t.Errorf("GET %s without a session: %d Location %q, want 303 to the login page", p, code, h.Get("Location"))
		}
	}
	for _, p := range postRoutes {
		if code, _, _ := b.post(p, url.Values{"csrf": {"x"}}); code != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d, want 401", p, code)
		}
	}
	// Nothing was changed.
	if _, err := e.st.Get(t.Context(), api.KindNode, "web-1"); err != nil {
		t.Fatalf("node web-1: %v", err)
	}
	// A session cookie does not open the API: it needs a bearer token.
	lb := e.loggedIn()
	resp, err := lb.hc.Get(e.ts.URL + "/api/v1/nodes")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/nodes with a session cookie only: %d, want 401", resp.StatusCode)
	}
}

func TestCSRFRejected(t *testing.T) {
	e := newEnv(t, false)
	e.seed()
	b := e.loggedIn()
	for _, p := range postRoutes {
		for _, tok := range []string{"", "wrong-token"} {
			form := url.Values{"csrf": {tok}, "name": {"x-" + strings.ReplaceAll(strings.Trim(p, "/"), "/", "-")}, "password": {"long enough password"}, "yaml": {"kind: Node"}}
			code, body, _ := b.post(p, form)
			if code != http.StatusForbidden || !strings.Contains(body, "CSRF token") {
				t.Errorf("POST %s with csrf %q: %d, want 403 naming the CSRF token", p, tok, code)
			}
		}
	}
	// Nothing was changed: still logged in, objects and tokens kept.
	if code, _, _ := b.get("/ui/nodes"); code != http.StatusOK {
		t.Fatalf("after the rejected logout: GET /ui/nodes = %d, want 200", code)
	}
	for _, k := range []string{api.KindNode + "/web-1", api.KindDeployment + "/hello"} {
		kind, name, _ := strings.Cut(k, "/")
		if _, err := e.st.Get(t.Context(), kind, name); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if toks, _ := e.st.ListTokens(t.Context()); len(toks) != 1 {
		t.Errorf("tokens: %v, want only admin", toks)
	}
	if us, _ := e.st.ListUsers(t.Context()); len(us) != 1 {
		t.Errorf("users: %v, want only alice", us)
	}
	// The login form needs its own token (double-submit cookie).
	nb := e.browser()
	nb.get("/ui/login")
	code, _, _ := nb.post("/ui/login", url.Values{"csrf": {"forged"}, "name": {testUser}, "password": {testPassword}})
	if code != http.StatusForbidden {
		t.Fatalf("login with a forged csrf: %d, want 403", code)
	}
}

func TestEveryPageRendersWithHeaders(t *testing.T) {
	e := newEnv(t, false)
	e.seed()
	b := e.loggedIn()
	for _, p := range getPages {
		if strings.HasSuffix(p, "/stream") || strings.HasSuffix(p, "current-rollout") || p == "/ui/" {
			continue
		}
		code, body, h := b.get(p)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", p, code, body)
			continue
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: X-Frame-Options %q, X-Content-Type-Options %q", p, h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
		}
		if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(body) || strings.Contains(body, " style=") || strings.Contains(body, " onclick=") {
			t.Errorf("GET %s: inline script or style in the page", p)
		}
	}
}

func TestLoginSessionLogout(t *testing.T) {
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			e := newEnvOn(t, kind, false)
			b := e.browser()
			if code, body := b.login(testUser, "wrong password"); code != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password") {
				t.Fatalf("wrong password: %d", code)
			}
			b.get("/ui/login")
			code, _, h := b.post("/ui/login", url.Values{"name": {testUser}, "password": {testPassword}, "next": {"https://evil.example/"}})
			if code != http.StatusSeeOther || h.Get("Location") != "/ui/deployments" {
				t.Fatalf("login with an outside next: %d to %q, want 303 to /ui/deployments", code, h.Get("Location"))
			}
			var sc *http.Cookie
			for _, c := range (&http.Response{Header: h}).Cookies() {
				if c.Name == ui.SessionCookie {
					sc = c
				}
			}
			if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Secure {
				t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/ (not Secure over plain HTTP)", sc)
			}
			if code, _, _ := b.get("/ui/settings"); code != http.StatusOK {
				t.Fatalf("after login: %d", code)
			}
			// Logout destroys the session in the store: the old cookie is dead.
			if code, _, h := b.post("/ui/logout", nil); code != http.StatusSeeOther || h.Get("Location") != "/ui/login" {
				t.Fatalf("logout: %d %q", code, h.Get("Location"))
			}
			old := e.browser()
			u, _ := url.Parse(e.ts.URL)
			old.hc.Jar.SetCookies(u, []*http.Cookie{{Name: ui.SessionCookie, Value: sc.Value}})
			if code, _, _ := old.get("/ui/settings"); code != http.StatusSeeOther {
				t.Fatalf("old session cookie after logout: %d, want 303 to login", code)
			}
			// Sessions expire.
			b2 := e.loggedIn()
			e.clock.Add(2 * time.Hour)
			if code, _, _ := b2.get("/ui/settings"); code != http.StatusSeeOther {
				t.Fatalf("after the session TTL: %d, want 303 to login", code)
			}
		})
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, false)
	b := e.browser()
	for i := 0; i < 3; i++ {
		if code, _ := b.login(testUser, "wrong password"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	code, body := b.login(testUser, testPassword)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed logins") {
		t.Fatalf("right password after 3 failures: %d, want 429", code)
	}
	// Per address: other accounts from the same address are blocked too.
	if code, _ := b.login("bob", "whatever-pass"); code != http.StatusTooManyRequests {
		t.Fatalf("another account from the same address: %d, want 429", code)
	}
	e.clock.Add(time.Minute)
	if code, _ := b.login(testUser, testPassword); code != http.StatusSeeOther {
		t.Fatalf("after the window: %d, want 303", code)
	}
}

func TestSetupOnce(t *testing.T) {
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			e := newEnvOn(t, kind, true)
			b := e.browser()
			if code, _, _ := b.get("/ui/setup?token=wrong"); code != http.StatusForbidden {
				t.Fatalf("setup with a wrong token: %d", code)
			}
			if code, _, _ := b.get("/ui/setup?token=" + setupToken); code != http.StatusOK {
				t.Fatalf("setup page: %d", code)
			}
			code, body, _ := b.post("/ui/setup", url.Values{"token": {setupToken}, "name": {"root"}, "password": {"short"}, "password2": {"short"}})
			if code != http.StatusBadRequest || !strings.Contains(body, "at least 8") {
				t.Fatalf("short password: %d", code)
			}
			code, _, h := b.post("/ui/setup", url.Values{"token": {setupToken}, "name": {"root"}, "password": {testPassword}, "password2": {testPassword}})
			if code != http.StatusSeeOther || h.Get("Location") != "/ui/deployments" {
				t.Fatalf("setup: %d %q", code, h.Get("Location"))
			}
			if code, _, _ := b.get("/ui/deployments"); code != http.StatusOK {
				t.Fatalf("logged in after setup: %d", code)
			}
			b2 := e.browser()
			if code, _, _ := b2.get("/ui/setup?token=" + setupToken); code != http.StatusForbidden {
				t.Fatalf("setup link used twice: %d, want 403", code)
			}
			if _, err := e.st.GetUser(t.Context(), "root"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

const evil = `<script>alert(1)</script>`

func TestEscaping(t *testing.T) {
	e := newEnv(t, false)
	d := deployment("hello")
	d.Metadata.Annotations = map[string]string{"note": evil}
	d.Spec.Run.Command = evil
	e.create(d)
	b := e.loggedIn()
	for _, p := range []string{"/ui/deployments/hello", "/ui/editor?deployment=hello"} {
		code, body, _ := b.get(p)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, code)
		}
		if strings.Contains(body, evil) || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("GET %s: the <script> value is not escaped", p)
		}
	}
	// A label value that is invalid comes back in the error, escaped.
	yaml := "apiVersion: bakery.dev/v1\nkind: Node\nmetadata:\n  name: web-2\n  labels: {team: \"" + evil + "\"}\nspec: {address: 10.0.0.6}\n"
	code, body, _ := b.post("/ui/editor", url.Values{"yaml": {yaml}, "action": {"diff"}})
	if code != http.StatusBadRequest || strings.Contains(body, evil) || !strings.Contains(body, "metadata.labels.team") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatalf("editor with a <script> label: %d\n%s", code, body)
	}
	// The login form echoes the name escaped.
	nb := e.browser()
	_, body = nb.login(evil, "wrong password")
	if strings.Contains(body, evil) {
		t.Fatal("login page echoes the name unescaped")
	}
}

func TestNodeForms(t *testing.T) {
	e := newEnv(t, false)
	b := e.loggedIn()
	form := url.Values{"name": {"web-1"}, "address": {"10.0.0.5"}, "port": {"22x"}, "user": {"bakery-agent"}, "labels": {"role=web\nzone=a"}}
	code, body, _ := b.post("/ui/nodes", form)
	if code != http.StatusBadRequest || !strings.Contains(body, "spec.port") {
		t.Fatalf("bad port: %d\n%s", code, body)
	}
	form.Set("port", "70000")
	code, body, _ = b.post("/ui/nodes", form)
	if code != http.StatusBadRequest || !strings.Contains(body, "spec.port") {
		t.Fatalf("port out of range (the API's validation): %d\n%s", code, body)
	}
	form.Set("port", "2222")
	code, _, h := b.post("/ui/nodes", form)
	if code != http.StatusSeeOther || h.Get("Location") != "/ui/nodes/web-1?created=1" {
		t.Fatalf("create: %d %q", code, h.Get("Location"))
	}
	o, err := e.st.Get(t.Context(), api.KindNode, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	n := o.(*api.Node)
	if n.Spec.Port != 2222 || n.Metadata.Labels["zone"] != "a" {
		t.Fatalf("stored node: %+v %v", n.Spec, n.Metadata.Labels)
	}
	code, body, _ = b.get("/ui/nodes/web-1?created=1")
	if code != http.StatusOK || !strings.Contains(body, "Bootstrap") || !strings.Contains(body, "Verify now") {
		t.Fatalf("node page: %d", code)
	}
	// This server runs no control loop: verify says so instead of failing silently.
	if _, body, _ := b.post("/ui/nodes/web-1/verify", nil); !strings.Contains(body, "no control loop") {
		t.Fatalf("verify without a control loop:\n%s", body)
	}
	// Edit with a stale resourceVersion is a conflict; with the current one it saves.
	form.Set("address", "10.0.0.9")
	form.Set("resourceVersion", "12345")
	if code, _, _ := b.post("/ui/nodes/web-1", form); code != http.StatusConflict {
		t.Fatalf("stale edit: %d, want 409", code)
	}
	form.Set("resourceVersion", n.Metadata.ResourceVersion)
	if code, body, _ := b.post("/ui/nodes/web-1", form); code != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", code, body)
	}
	o, _ = e.st.Get(t.Context(), api.KindNode, "web-1")
	if o.(*api.Node).Spec.Address != "10.0.0.9" {
		t.Fatal("edit not stored")
	}
	if code, body, _ := b.get("/ui/nodes"); code != http.StatusOK || !strings.Contains(body, "10.0.0.9") {
		t.Fatalf("nodes list: %d", code)
	}
	if code, _, _ := b.post("/ui/nodes/web-1/delete", nil); code != http.StatusSeeOther {
		t.Fatalf("delete: %d", code)
	}
	if _, err := e.st.Get(t.Context(), api.KindNode, "web-1"); err == nil {
		t.Fatal("node still there after delete")
	}
}

func TestEditorDiffApply(t *testing.T) {
	e := newEnv(t, false)
	b := e.loggedIn()
	if _, body, _ := b.get("/ui/editor"); !strings.Contains(body, "kind: Deployment") {
		t.Fatal("editor has no template")
	}
	yaml := "apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  source: {repo: /srv/git/web.git, ref: main}\n  nodes: [web-1]\n  run: {command: ./server}\n"
	code, body, _ := b.post("/ui/editor", url.Values{"yaml": {yaml}, "action": {"diff"}})
	if code != http.StatusOK || !strings.Contains(body, "created (dry run)") || !strings.Contains(body, `<span class="add">&#43;  source:`) {
		t.Fatalf("diff: %d\n%s", code, body)
	}
	if _, err := e.st.Get(t.Context(), api.KindDeployment, "web"); err == nil {
		t.Fatal("diff stored the deployment")
	}
	code, _, h := b.post("/ui/editor", url.Values{"yaml": {yaml}, "action": {"apply"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/ui/deployments/web?applied=1" {
		t.Fatalf("apply: %d %q", code, h.Get("Location"))
	}
	if code, body, _ := b.get("/ui/deployments/web?applied=1"); code != http.StatusOK || !strings.Contains(body, "Applied") {
		t.Fatalf("deployment page: %d", code)
	}
	// A change shows as a diff against the stored spec.
	changed := strings.Replace(yaml, "./server", "./server --fast", 1)
	_, body, _ = b.post("/ui/editor", url.Values{"yaml": {changed}, "action": {"diff"}, "name": {"web"}})
	if !strings.Contains(body, "configured (dry run)") || !strings.Contains(body, `<span class="del">-    command: ./server</span>`) {
		t.Fatalf("diff of a change:\n%s", body)
	}
	// Bad input: every problem with its field path; nothing applied.
	bad := strings.Replace(yaml, "ref: main", "ref: main, bogus: 1", 1)
	code, body, _ = b.post("/ui/editor", url.Values{"yaml": {bad}, "action": {"apply"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `<code class="field">`) || !strings.Contains(body, "bogus") {
		t.Fatalf("bad spec: %d\n%s", code, body)
	}
}

func TestDeploymentPages(t *testing.T) {
	e := newEnv(t, false)
	e.create(deployment("hello"))
	var rs store.Rollouts = e.st
	now := &api.Time{Time: time.Now()}
	ro := &api.Rollout{ID: "hello-1-abc", Deployment: "hello", Revision: 1, Trigger: api.TriggerRollback, Commit: "0123456789abcdef", State: api.RolloutRunning, CreatedAt: now}
	if err := rs.CreateRollout(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	var lines []api.LogLine
	for i := int64(1); i <= 5; i++ {
		lines = append(lines, api.LogLine{Seq: i, Node: "web-1", Stream: "stdout", Time: now, Text: "line " + string(rune('0'+i))})
	}
	if err := rs.AppendLogs(t.Context(), ro.ID, lines); err != nil {
		t.Fatal(err)
	}
	b := e.loggedIn()
	code, body, _ := b.get("/ui/deployments/hello")
	if code != http.StatusOK || !strings.Contains(body, "hello-1-abc") || !strings.Contains(body, "Rollback") {
		t.Fatalf("deployment page: %d\n%s", code, body)
	}
	if strings.Contains(body, `id="action-resume"`) {
		t.Fatal("a resume button on a deployment no pin holds")
	}
	// A rollback's pin: the page says so and offers resume.
	o, err := e.st.Get(t.Context(), api.KindDeployment, "hello")
	if err != nil {
		t.Fatal(err)
	}
	d := o.(*api.Deployment)
	d.Status.Pin = &api.CommitPin{Commit: "0123456789abcdef0123456789abcdef01234567", Reason: api.TriggerRollback, Revision: 1, Generation: d.Metadata.Generation}
	if _, err := e.st.UpdateStatus(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := b.get("/ui/deployments/hello"); !strings.Contains(body, `id="action-resume"`) || !strings.Contains(body, "pinned: revision 1, commit 0123456") {
		t.Fatalf("deployment page of a pinned deployment:\n%s", body)
	}
	if _, body, _ := b.get("/ui/deployments/hello?rollout=hello-1-abc"); !strings.Contains(body, `data-pinned="hello-1-abc"`) {
		t.Fatal("?rollout= does not pin the log panel")
	}
	if _, body, _ := b.get("/ui/deployments/hello?rollout=../x"); strings.Contains(body, "data-pinned") {
		t.Fatal("an invalid rollout id is pinned")
	}
	if code, _, _ := b.get("/ui/deployments/Bad_Name/logs/stream"); code != http.StatusBadRequest {
		t.Fatalf("runtime log stream with a bad name: %d, want 400", code)
	}
	if _, body, _ := b.get("/ui/deployments/hello/current-rollout"); !strings.Contains(body, `"id":"hello-1-abc"`) {
		t.Fatalf("current rollout: %s", body)
	}
	// Actions need the control loop; without one the page says so.
	if code, body, _ := b.post("/ui/deployments/hello/actions/rollback", nil); code != http.StatusServiceUnavailable || !strings.Contains(body, "no deployment loop") {
		t.Fatalf("rollback without a loop: %d", code)
	}
	// The rollout log passes the API's SSE through, resuming after Last-Event-ID.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/ui/rollouts/hello-1-abc/stream", nil)
	req.Header.Set("Last-Event-ID", "3")
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var ids []string
	for sc.Scan() && len(ids) < 2 {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, id)
		}
	}
	if strings.Join(ids, ",") != "4,5" {
		t.Fatalf("stream after Last-Event-ID 3 sent ids %v, want 4,5", ids)
	}
}

func TestSettingsTokensUsers(t *testing.T) {
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			e := newEnvOn(t, kind, false)
			b := e.loggedIn()
			code, body, _ := b.post("/ui/settings/tokens", url.Values{"name": {"laptop"}})
			m := regexp.MustCompile(`<pre class="cmd" id="new-token">(bkr_[A-Za-z0-9_-]+)</pre>`).FindStringSubmatch(body)
			if code != http.StatusOK || m == nil {
				t.Fatalf("create token: %d\n%s", code, body)
			}
			tok := m[1]
			api := func() int {
				req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/api/v1/deployments", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if c := api(); c != http.StatusOK {
				t.Fatalf("the CLI with the new token: %d", c)
			}
			if _, body, _ := b.get("/ui/settings"); strings.Contains(body, tok) || !strings.Contains(body, "laptop") {
				t.Fatal("settings page shows the token again, or not its name")
			}
			if code, _, _ := b.post("/ui/settings/tokens", url.Values{"name": {"laptop"}}); code != http.StatusConflict {
				t.Fatalf("duplicate token name: %d", code)
			}
			if code, _, _ := b.post("/ui/settings/tokens", url.Values{"name": {"Bad Name"}}); code != http.StatusBadRequest {
				t.Fatalf("bad token name: %d", code)
			}
			if code, _, _ := b.post("/ui/settings/tokens/laptop/delete", nil); code != http.StatusOK {
				t.Fatalf("revoke: %d", code)
			}
			if c := api(); c != http.StatusUnauthorized {
				t.Fatalf("revoked token: %d, want 401", c)
			}
			// Users: create, log in as them, cannot delete yourself, delete ends their sessions.
			if code, _, _ := b.post("/ui/settings/users", url.Values{"name": {"bob"}, "password": {"bob's password"}}); code != http.StatusOK {
				t.Fatalf("create user: %d", code)
			}
			bob := e.browser()
			if code, _ := bob.login("bob", "bob's password"); code != http.StatusSeeOther {
				t.Fatalf("bob's login: %d", code)
			}
			if code, _, _ := bob.post("/ui/settings/users/bob/delete", nil); code != http.StatusBadRequest {
				t.Fatalf("delete yourself: %d, want 400", code)
			}
			if code, _, _ := b.post("/ui/settings/users/bob/delete", nil); code != http.StatusOK {
				t.Fatalf("delete bob: %d", code)
			}
			if code, _, _ := bob.get("/ui/settings"); code != http.StatusSeeOther {
				t.Fatalf("bob's session after his deletion: %d, want 303 to login", code)
			}
			if _, body, _ := b.get("/ui/settings"); !strings.Contains(body, "https://hooks.example (slack, failures)") {
				t.Fatal("notification targets not shown")
			}
		})
	}
}

// Behind a TLS-terminating proxy (PublicURL https) cookies are Secure
// although the request came over plain HTTP.
func TestSecureCookiesBehindTLSProxy(t *testing.T) {
	st, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := auth.CreateUser(t.Context(), st, testUser, testPassword, bcrypt.MinCost, time.Now()); err != nil {
		t.Fatal(err)
	}
	sc := server.Config{Store: st, PublicURL: "https://bakery.example", Logger: slog.New(slog.DiscardHandler),
		Auth: auth.Config{BcryptCost: bcrypt.MinCost}}
	sc.UI = mounted(ui.Config{}, sc)
	srv, err := server.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if !c.Secure {
			t.Fatalf("cookie %s is not Secure behind an https PublicURL", c.Name)
		}
	}
	if len(resp.Cookies()) == 0 {
		t.Fatal("no pre-session cookie set")
	}
}

// The deployment page shows spec.release, its last run and each
// rollout's release step (ran where and how long, failed, skipped).
func TestDeploymentPageRelease(t *testing.T) {
	e := newEnv(t, false)
	d := deployment("hello")
	d.Spec.Release = &api.Release{Command: "./manage.py migrate", Timeout: &api.Duration{Duration: 5 * time.Minute}}
	e.create(d)
	var rs store.Rollouts = e.st
	now := &api.Time{Time: time.Now()}
	for _, ro := range []*api.Rollout{
		{ID: "hello-1-abc", Deployment: "hello", Revision: 1, Trigger: api.TriggerApply, Commit: "0123456789abcdef", State: api.RolloutSucceeded, CreatedAt: now,
			Release: &api.ReleaseRun{Commit: "0123456789abcdef", Node: "web-1", Result: api.ReleaseSucceeded, DurationMillis: 812}},
		{ID: "hello-2-def", Deployment: "hello", Revision: 2, Trigger: api.TriggerApply, Commit: "1123456789abcdef", State: api.RolloutFailed, CreatedAt: now,
			Release: &api.ReleaseRun{Commit: "1123456789abcdef", Node: "web-1", Result: api.ReleaseFailed, ExitCode: 3, DurationMillis: 40, Message: "exit status 3"}},
	} {
		if err := rs.CreateRollout(t.Context(), ro); err != nil {
			t.Fatal(err)
		}
	}
	o, err := e.st.Get(t.Context(), api.KindDeployment, "hello")
	if err != nil {
		t.Fatal(err)
	}
	dd := o.(*api.Deployment)
	dd.Status.Release = &api.ReleaseRun{Commit: "1123456789abcdef", Rollout: "hello-2-def", Node: "web-1", Result: api.ReleaseFailed, ExitCode: 3, DurationMillis: 40}
	if _, err := e.st.UpdateStatus(t.Context(), dd); err != nil {
		t.Fatal(err)
	}
	_, body, _ := e.loggedIn().get("/ui/deployments/hello")
	for _, want := range []string{`id="release"`, "./manage.py migrate", "5m0s", `class="pill release-failed"`, "on web-1 in 40 ms (exit 3)",
		`href="/ui/deployments/hello?rollout=hello-2-def"`, `class="pill release-succeeded"`, "on web-1 in 812 ms"} {
		if !strings.Contains(body, want) {
			t.Errorf("deployment page lacks %q", want)
		}
	}
}
