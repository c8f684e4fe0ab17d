package ui_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/github"
	"bakery.dev/bakery/api/github/githubtest"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
)

// withGitHub configures the server's GitHub integration against the fake
// GitHub gh, with an encryption keyring for the tokens.
func withGitHub(t *testing.T, gh *githubtest.Server) func(*server.Config) {
	kr, err := sealed.ParseKeyring(sealed.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return func(c *server.Config) {
		c.Keyring = kr
		c.GitHub = &github.Client{ClientID: githubtest.ClientID, ClientSecret: githubtest.ClientSecret, WebURL: gh.URL, APIURL: gh.APIURL()}
	}
}

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// githubSignIn runs the OAuth web flow the way a browser does: the UI's
// sign-in link, GitHub's authorize page (the fake approves), the API's
// callback with b's cookies. It returns the callback's answer.
func githubSignIn(t *testing.T, b, callbackAs *browser, next string) (int, string, string) {
	t.Helper()
	code, _, h := b.get("/ui/github/login?" + url.Values{"next": {next}}.Encode())
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in link: %d", code)
	}
	resp, err := noFollow.Get(h.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(cb, server.GitHubCallbackPath+"?") {
		t.Fatalf("authorize: %d → %q", resp.StatusCode, cb)
	}
	resp, err = callbackAs.hc.Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// TestGitHubPanel covers the editor's GitHub panel: sign-in per UI user
// (the callback returns the browser to the page it came from; another
// user's session cannot complete it), the repository list, branches and
// clone URLs, putting them into the spec, and registering the webhook.
// The browser part is in TestBrowserPages.
func TestGitHubPanel(t *testing.T) {
	gh := githubtest.Start(t)
	e := newEnvWith(t, "file", false, withGitHub(t, gh))
	if err := auth.CreateUser(t.Context(), e.st, "bob", testPassword, bcrypt.MinCost, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.create(deployment("hello"))
	alice, bob := e.loggedIn(), e.browser()
	if code, body := bob.login("bob", testPassword); code != http.StatusSeeOther {
		t.Fatalf("bob's login: %d %s", code, body)
	}

	// The editor has the panel; not signed in, it offers the sign-in link,
	// which comes back to the editor.
	code, body, _ := alice.get("/ui/editor?deployment=hello")
	if code != 200 || !strings.Contains(body, `hx-get="/ui/github/repos?next=%2Fui%2Feditor%3Fdeployment%3Dhello"`) {
		t.Fatalf("editor: %d\n%s", code, body)
	}
	code, body, _ = alice.get("/ui/github/repos?next=%2Fui%2Feditor%3Fdeployment%3Dhello")
	if code != 200 || !strings.Contains(body, `id="gh-signin" href="/ui/github/login?next=%2Fui%2Feditor%3Fdeployment%3Dhello"`) {
		t.Fatalf("repos before sign-in: %d\n%s", code, body)
	}

	// Bob's browser cannot complete a sign-in Alice started: that would
	// give Alice Bob's GitHub account.
	code, _, body = githubSignIn(t, alice, bob, "/ui/editor")
	if code != http.StatusUnauthorized || !strings.Contains(body, "another Bakery user") {
		t.Fatalf("callback with another user's session: %d %s", code, body)
	}
	// Alice signs in: back in the editor of hello.
	code, loc, body := githubSignIn(t, alice, alice, "/ui/editor?deployment=hello")
	if code != http.StatusSeeOther || loc != "/ui/editor?deployment=hello&github=signed-in" {
		t.Fatalf("callback: %d → %q %s", code, loc, body)
	}
	if _, body, _ = alice.get(loc); !strings.Contains(body, "Signed in to GitHub") {
		t.Fatalf("editor after sign-in:\n%s", body)
	}
	// No open redirect: next outside the UI lands in the editor.
	if _, loc, _ = githubSignIn(t, alice, alice, "https://evil.example/x"); loc != "/ui/deployments?github=signed-in" {
		t.Fatalf("callback with an outside next went to %q", loc)
	}

	// The GitHub token is Alice's alone: Bob and an API token are not
	// signed in.
	if _, body, _ = bob.get("/ui/github/repos"); !strings.Contains(body, `id="gh-signin"`) {
		t.Fatalf("bob's repos:\n%s", body)
	}
	tok, hash, _ := auth.NewToken()
	if err := e.st.CreateToken(t.Context(), store.Token{Name: "cli", Hash: hash, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.ts.URL+"/api/v1/github/repos", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an API token used Alice's GitHub sign-in: %d", resp.StatusCode)
	}

	// Repositories, then the branches and clone URLs of one.
	_, body, _ = alice.get("/ui/github/repos")
	for _, w := range []string{`<option value="octo/app">octo/app (private)</option>`, `<option value="octo/lib">octo/lib</option>`, `hx-get="/ui/github/branches"`} {
		if !strings.Contains(body, w) {
			t.Fatalf("repos fragment lacks %s:\n%s", w, body)
		}
	}
	_, body, _ = alice.get("/ui/github/branches?ghrepo=octo/app")
	for _, w := range []string{`<option value="main" selected>main (c5b97d5ae6c1)</option>`, `<option value="dev">dev (6dcb09b5b578)</option>`,
		`<option value="git@github.example:octo/app.git" selected>`, `<option value="https://github.example/octo/app.git">`, `id="gh-use"`} {
		if !strings.Contains(body, w) {
			t.Fatalf("branches fragment lacks %s:\n%s", w, body)
		}
	}
	if _, body, _ = alice.get("/ui/github/branches?ghrepo=octo/nope"); !strings.Contains(body, `id="gh-error"`) || !strings.Contains(body, "404") {
		t.Fatalf("branches of a missing repo:\n%s", body)
	}

	// "Use in spec" puts them into the YAML and shows the diff.
	_, body, _ = alice.get("/ui/editor?deployment=hello")
	yaml := html2text(between(body, `id="yaml" rows="28" spellcheck="false" autocapitalize="off" autocomplete="off">`, "</textarea>"))
	code, body, _ = alice.post("/ui/editor", url.Values{"name": {"hello"}, "yaml": {yaml}, "action": {"source"},
		"ghrepo": {"octo/app"}, "ghref": {"dev"}, "ghurl": {"git@github.example:octo/app.git"}})
	if code != 200 || !strings.Contains(body, "repo: git@github.example:octo/app.git") || !strings.Contains(body, `<span class="add">&#43;    ref: dev</span>`) ||
		!strings.Contains(body, `<span class="del">-    ref: main</span>`) || !strings.Contains(body, "Source set to") {
		t.Fatalf("use in spec: %d\n%s", code, body)
	}
	code, body, _ = alice.post("/ui/editor", url.Values{"yaml": {yaml}, "action": {"source"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "choose a repository and a branch") {
		t.Fatalf("use without a choice: %d\n%s", code, body)
	}

	// Register the webhook: GitHub gets it with a new secret, the page
	// the outcome.
	code, body, _ = alice.post("/ui/github/hooks", url.Values{"ghrepo": {"octo/app"}})
	if code != 200 || !strings.Contains(body, "Webhook 12345678 registered on octo/app") || !strings.Contains(body, server.GitHubWebhookPath) {
		t.Fatalf("register webhook: %d\n%s", code, body)
	}
	if hooks := gh.Hooks(); len(hooks) != 1 {
		t.Fatalf("hooks sent to GitHub: %v", hooks)
	}
	if code, body, _ = bob.post("/ui/github/hooks", url.Values{"ghrepo": {"octo/app"}}); !strings.Contains(body, "not signed in to GitHub") {
		t.Fatalf("bob registers a webhook: %d\n%s", code, body)
	}
	if code, _, _ := alice.post("/ui/github/hooks", url.Values{"ghrepo": {"octo/app"}, "csrf": {"wrong"}}); code != http.StatusForbidden {
		t.Fatalf("webhook without the CSRF token: %d", code)
	}
}

// TestGitHubPanelNotConfigured: without the GitHub integration the editor
// has no panel.
func TestGitHubPanelNotConfigured(t *testing.T) {
	e := newEnv(t, false)
	if _, body, _ := e.loggedIn().get("/ui/editor"); strings.Contains(body, `id="github"`) {
		t.Fatal("the editor offers GitHub without the integration")
	}
}

func between(s, from, to string) string {
	_, s, _ = strings.Cut(s, from)
	s, _, _ = strings.Cut(s, to)
	return s
}

func html2text(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&amp;", "&").Replace(s)
}

// TestEditorRecordsApplier: a spec applied in the editor records the UI
// user as its applier (status.appliedBy, written in the apply's
// transaction), on both stores; a dry run records nothing.
func TestEditorRecordsApplier(t *testing.T) {
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			e := newEnvOn(t, kind, false)
			b := e.loggedIn()
			yaml := "apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  source: {repo: /srv/git/web.git, ref: main}\n  nodes: [web-1]\n  run: {command: ./server}\n"
			if code, _, _ := b.post("/ui/editor", url.Values{"yaml": {yaml}, "action": {"apply"}}); code != http.StatusSeeOther {
				t.Fatalf("apply: %d", code)
			}
			changed := strings.Replace(yaml, "./server", "./server --fast", 1)
			if code, _, _ := b.post("/ui/editor", url.Values{"yaml": {changed}, "action": {"diff"}}); code != http.StatusOK {
				t.Fatalf("diff: %d", code)
			}
			o, err := e.st.Get(t.Context(), "Deployment", "web")
			if err != nil {
				t.Fatal(err)
			}
			d := o.(*api.Deployment)
			if a := d.Status.AppliedBy; a == nil || a.By != "user:"+testUser || a.Generation != 1 || d.Metadata.Generation != 1 {
				t.Fatalf("appliedBy %+v at generation %d", a, d.Metadata.Generation)
			}
		})
	}
}
