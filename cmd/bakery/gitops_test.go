package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/github"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/manager"
	"bakery.dev/bakery/reconciler/nodeconn"
)

// gitopsEnv is a server with the control loop running, a keyring for
// webhook secrets, and the GitHub integration pointed at ghURL.
func gitopsEnv(t *testing.T, ghURL string) {
	t.Helper()
	isolate(t)
	log := slog.New(slog.DiscardHandler)
	st, err := filestore.Open(t.TempDir(), filestore.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	token, _, err := auth.EnsureAdminToken(t.Context(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := nodeconn.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := manager.New(manager.Config{Store: st, Identity: id, DataDir: t.TempDir(), Logger: log, AllowLocalNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); mgr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	kr, _ := sealed.ParseKeyring(sealed.NewKey())
	srv, err := server.New(server.Config{Store: st, Logger: log, Loop: mgr, Keyring: kr,
		GitHub: &github.Client{ClientID: "cid", ClientSecret: "csecret", WebURL: ghURL, APIURL: ghURL + "/api"}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Setenv("BAKERY_SERVER", hs.URL)
	t.Setenv("BAKERY_TOKEN", token)
}

func TestCLISourceAndWebhook(t *testing.T) {
	gitopsEnv(t, "http://127.0.0.1:1")
	repo := filepath.Join(t.TempDir(), "m")
	git := func(args ...string) {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.test", "-C", repo}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	os.MkdirAll(repo, 0o755)
	git("init", "-q", "-b", "main")
	writeFile(t, filepath.Join(repo, "nodes.yaml"), "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: n1}\nspec: {local: true}\n")
	git("add", "-A")
	git("commit", "-q", "-m", "n1")
	src := filepath.Join(t.TempDir(), "src.yaml")
	writeFile(t, src, "apiVersion: bakery.dev/v1\nkind: ManifestSource\nmetadata: {name: infra}\nspec: {repo: "+repo+", interval: 1h, allowedKinds: [Node, Deployment]}\n")
	must(t, "", "apply", "-f", src)
	out := must(t, "", "source", "sync", "infra", "--wait", "20s")
	if !strings.Contains(out, "synced commit") || !strings.Contains(out, "(1 objects)") {
		t.Fatalf("source sync:\n%s", out)
	}
	if out := must(t, "", "get", "nodes"); !strings.Contains(out, "n1") {
		t.Fatalf("the node from the source is missing:\n%s", out)
	}
	out = must(t, "", "source", "get")
	if !strings.Contains(out, "infra") || !strings.Contains(out, "True") {
		t.Fatalf("source get:\n%s", out)
	}
	out = must(t, "", "source", "describe", "infra")
	for _, w := range []string{"Node/n1", "Last synced commit", "Last error:"} {
		if !strings.Contains(out, w) {
			t.Fatalf("source describe lacks %q:\n%s", w, out)
		}
	}
	// A broken commit: sync --wait fails with the error, nothing applied.
	writeFile(t, filepath.Join(repo, "bad.yaml"), "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: n2}\nspec: {local: yes-please}\n")
	git("add", "-A")
	git("commit", "-q", "-m", "bad")
	r := bakery(t, "", "source", "sync", "infra", "--wait", "20s")
	if r.code == 0 || !strings.Contains(r.stderr, "spec.local") {
		t.Fatalf("sync of a broken commit: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := bakery(t, "", "get", "node", "n2"); r.code == 0 {
		t.Fatal("n2 applied from a broken commit")
	}
	// A commit breaking a cross-object rule (an ingress host claimed by a
	// hand-made deployment) applies nothing either.
	os.Remove(filepath.Join(repo, "bad.yaml"))
	dep := func(name string) string {
		return "apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata: {name: " + name + "}\nspec:\n  source: {repo: /srv/x}\n  nodes: [n1]\n  run: {command: x}\n  suspend: true\n  ingress: {hosts: [taken.example.test]}\n"
	}
	hand := filepath.Join(t.TempDir(), "hand.yaml")
	writeFile(t, hand, dep("hand"))
	must(t, "", "apply", "-f", hand)
	writeFile(t, filepath.Join(repo, "web.yaml"), dep("web"))
	git("add", "-A")
	git("commit", "-q", "-m", "clash")
	r = bakery(t, "", "source", "sync", "infra", "--wait", "20s")
	if r.code == 0 || !strings.Contains(r.stderr, "claimed by Deployment/hand") {
		t.Fatalf("sync of a clashing commit: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := bakery(t, "", "get", "deployment", "web"); r.code == 0 {
		t.Fatal("web applied despite the clash")
	}
	// Webhook secrets: printed once.
	r = bakery(t, "", "webhook", "create", repo)
	if r.code != 0 || !strings.Contains(r.stdout, "Secret:") || !strings.Contains(r.stderr, "shown only this once") {
		t.Fatalf("webhook create: %+v", r)
	}
	secret := strings.TrimSpace(r.stdout[strings.Index(r.stdout, "Secret:")+len("Secret:"):])
	if r := bakery(t, "", "webhook", "create", repo); r.code == 0 || strings.Contains(r.stdout+r.stderr, secret) {
		t.Fatalf("second create: %+v", r)
	}
	if out := must(t, "", "webhook", "get", repo); strings.Contains(out, secret) || !strings.Contains(out, "(set; shown only when created)") {
		t.Fatalf("webhook get:\n%s", out)
	}
	if out := must(t, "", "webhook", "create", "--rotate", repo); !strings.Contains(out, "Secret:") || strings.Contains(out, secret) {
		t.Fatalf("rotate:\n%s", out)
	}
}

func TestCLIGitHub(t *testing.T) {
	var mu sync.Mutex
	var hooks []string
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js := func(v any) { w.Header().Set("Content-Type", "application/json"); json.NewEncoder(w).Encode(v) }
		switch {
		case r.URL.Path == "/login/oauth/authorize":
			http.Redirect(w, r, r.URL.Query().Get("redirect_uri")+"?code=c&state="+r.URL.Query().Get("state"), http.StatusFound)
		case r.URL.Path == "/login/oauth/access_token":
			js(map[string]string{"access_token": "gho_cli", "token_type": "bearer", "scope": "repo"})
		case r.Header.Get("Authorization") != "Bearer gho_cli":
			w.WriteHeader(401)
		case r.URL.Path == "/api/user":
			js(map[string]any{"login": "octo"})
		case r.URL.Path == "/api/user/repos":
			js([]any{map[string]any{"full_name": "octo/app", "private": true, "clone_url": "https://gh.example/octo/app.git", "default_branch": "main"}})
		case r.URL.Path == "/api/repos/octo/app/branches":
			js([]any{map[string]any{"name": "main", "commit": map[string]string{"sha": strings.Repeat("a", 40)}}})
		case r.URL.Path == "/api/repos/octo/app" && r.Method == "GET":
			js(map[string]any{"full_name": "octo/app", "clone_url": "https://gh.example/octo/app.git"})
		case r.URL.Path == "/api/repos/octo/app/hooks" && r.Method == "POST":
			mu.Lock()
			hooks = append(hooks, r.URL.Path)
			mu.Unlock()
			w.WriteHeader(201)
			js(map[string]any{"id": 7})
		default:
			w.WriteHeader(404)
		}
	}))
	defer gh.Close()
	gitopsEnv(t, gh.URL)
	if r := bakery(t, "", "github", "repos"); r.code == 0 || !strings.Contains(r.stderr, "not signed in") {
		t.Fatalf("repos before login: %+v", r)
	}
	u := strings.TrimSpace(must(t, "", "github", "login"))
	resp, err := http.Get(u) // the browser
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	if out := must(t, "", "github", "repos"); !strings.Contains(out, "octo/app") || !strings.Contains(out, "https://gh.example/octo/app.git") {
		t.Fatalf("repos:\n%s", out)
	}
	if out := must(t, "", "github", "branches", "octo/app"); !strings.Contains(out, "main") || !strings.Contains(out, strings.Repeat("a", 40)) {
		t.Fatalf("branches:\n%s", out)
	}
	if out := must(t, "", "github", "hook", "octo/app"); !strings.Contains(out, "webhook 7 registered on gh.example/octo/app") {
		t.Fatalf("hook:\n%s", out)
	}
	if len(hooks) != 1 {
		t.Fatalf("hooks: %v", hooks)
	}
	if r := bakery(t, "", "github", "branches", "octo"); r.code == 0 {
		t.Fatal("branches without OWNER/REPO accepted")
	}
}
