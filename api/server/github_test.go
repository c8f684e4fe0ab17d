package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/sealed"
)

// fakeGitHub implements the few GitHub endpoints Bakery uses, with the
// response shapes of GitHub's REST documentation (OAuth web flow, "List
// repositories for the authenticated user", "List branches", "Get a
// repository", "Create a repository webhook").
type fakeGitHub struct {
	t  *testing.T
	mu sync.Mutex
	// hooks are the create-webhook request bodies received.
	hooks []map[string]any
}

const (
	fakeClientID     = "Iv1.clientid"
	fakeClientSecret = "client-secret-xyz"
	fakeCode         = "code-123"
	fakeToken        = "gho_fakeTokenValue0123456789"
)

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	jsonOut := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	if strings.HasPrefix(r.URL.Path, "/login/oauth/") {
		switch r.URL.Path {
		case "/login/oauth/authorize":
			q := r.URL.Query()
			if q.Get("client_id") != fakeClientID || !strings.Contains(q.Get("scope"), "admin:repo_hook") {
				t.Errorf("authorize: %v", q)
			}
			// The user approves: back to the app with a code.
			http.Redirect(w, r, q.Get("redirect_uri")+"?code="+fakeCode+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
		case "/login/oauth/access_token":
			r.ParseForm()
			if r.Method != http.MethodPost || r.Form.Get("client_secret") != fakeClientSecret || r.Form.Get("code") != fakeCode || r.Header.Get("Accept") != "application/json" {
				jsonOut(200, map[string]string{"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})
				return
			}
			jsonOut(200, map[string]string{"access_token": fakeToken, "scope": "repo,admin:repo_hook", "token_type": "bearer"})
		default:
			http.NotFound(w, r)
		}
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/api/v3/") {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+fakeToken {
		jsonOut(401, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	repo := map[string]any{"id": 1296269, "name": "app", "full_name": "octo/app", "private": true,
		"owner": map[string]any{"login": "octo", "id": 1}, "html_url": "https://github.example/octo/app",
		"clone_url": "https://github.example/octo/app.git", "ssh_url": "git@github.example:octo/app.git", "default_branch": "main"}
	switch p := strings.TrimPrefix(r.URL.Path, "/api/v3"); {
	case p == "/user":
		jsonOut(200, map[string]any{"login": "octo", "id": 1, "type": "User"})
	case p == "/user/repos":
		if r.URL.Query().Get("page") != "1" {
			jsonOut(200, []any{})
			return
		}
		jsonOut(200, []any{repo, map[string]any{"id": 2, "name": "lib", "full_name": "octo/lib", "private": false,
			"clone_url": "https://github.example/octo/lib.git", "ssh_url": "git@github.example:octo/lib.git", "html_url": "https://github.example/octo/lib", "default_branch": "trunk"}})
	case p == "/repos/octo/app/branches":
		jsonOut(200, []any{
			map[string]any{"name": "main", "commit": map[string]string{"sha": "c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc", "url": "https://api.github.example/x"}, "protected": true},
			map[string]any{"name": "dev", "commit": map[string]string{"sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "url": "https://api.github.example/y"}, "protected": false},
		})
	case p == "/repos/octo/app" && r.Method == http.MethodGet:
		jsonOut(200, repo)
	case p == "/repos/octo/app/hooks" && r.Method == http.MethodPost:
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			jsonOut(400, map[string]string{"message": "Problems parsing JSON"})
			return
		}
		f.mu.Lock()
		f.hooks = append(f.hooks, body)
		f.mu.Unlock()
		jsonOut(201, map[string]any{"type": "Repository", "id": 12345678, "name": "web", "active": true, "events": body["events"], "config": map[string]any{
			"content_type": "json", "insecure_ssl": "0", "url": body["config"].(map[string]any)["url"]}})
	default:
		jsonOut(404, map[string]string{"message": "Not Found"})
	}
}

func TestGitHubIntegration(t *testing.T) {
	fake := &fakeGitHub{t: t}
	gh := httptest.NewServer(fake)
	defer gh.Close()
	kr, err := sealed.ParseKeyring(sealed.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	pr := &pushRecorder{}
	e := newEnv(t, func(c *server.Config) {
		c.Keyring = kr
		c.Actions = pr
		c.GitHub = &server.GitHubConfig{ClientID: fakeClientID, ClientSecret: fakeClientSecret, WebURL: gh.URL, APIURL: gh.URL + "/api/v3"}
	})
	// Not signed in yet.
	want(t, e.req("GET", "/api/v1/github/repos", "", ""), http.StatusUnauthorized)
	// The callback with a state nobody minted: refused.
	want(t, e.reqToken("GET", server.GitHubCallbackPath+"?code=x&state=forged", "", "", ""), http.StatusUnauthorized)

	// Sign in: the browser follows the authorize URL to the fake GitHub,
	// which sends it back to the callback.
	r := e.req("GET", "/api/v1/github/login", "", "")
	want(t, r, http.StatusOK)
	var login server.GitHubLogin
	r.decode(t, &login)
	if !strings.HasPrefix(login.AuthorizeURL, gh.URL+"/login/oauth/authorize?") {
		t.Fatalf("authorize URL %s", login.AuthorizeURL)
	}
	resp, err := http.Get(login.AuthorizeURL) // no bearer token: a browser
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"login": "octo"`) {
		t.Fatalf("callback: %d %s", resp.StatusCode, b)
	}
	// The state is used once.
	if resp, err := http.Get(login.AuthorizeURL); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a state used twice: %d", resp.StatusCode)
		}
	}
	// The token is stored sealed: not in the clear anywhere in the data dir.
	if n := grepDir(t, e.st.Dir(), fakeToken); n != 0 {
		t.Fatalf("the OAuth token is in the clear in %d files", n)
	}

	// Repositories and branches.
	r = e.req("GET", "/api/v1/github/repos", "", "")
	want(t, r, http.StatusOK)
	var repos server.GitHubRepoList
	r.decode(t, &repos)
	if len(repos.Items) != 2 || repos.Items[0].FullName != "octo/app" || repos.Items[0].CloneURL != "https://github.example/octo/app.git" || repos.Items[1].DefaultBranch != "trunk" {
		t.Fatalf("repos: %+v", repos)
	}
	r = e.req("GET", "/api/v1/github/repos/octo/app/branches", "", "")
	want(t, r, http.StatusOK)
	var branches server.GitHubBranchList
	r.decode(t, &branches)
	if fmt.Sprint(branches.Items) != "[{main c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc} {dev 6dcb09b5b57875f334f61aebed695e2e4193db5e}]" {
		t.Fatalf("branches: %+v", branches)
	}
	want(t, e.req("GET", "/api/v1/github/repos/octo/a%20b/branches", "", ""), http.StatusBadRequest)

	// Register the webhook: GitHub gets the URL and a generated secret.
	r = e.req("POST", "/api/v1/github/repos/octo/app/hooks", "", "")
	want(t, r, http.StatusCreated)
	var hook server.GitHubHook
	r.decode(t, &hook)
	if hook.ID != 12345678 || hook.Repo != "github.example/octo/app" || !strings.HasSuffix(hook.URL, server.GitHubWebhookPath) {
		t.Fatalf("hook: %+v", hook)
	}
	if len(fake.hooks) != 1 {
		t.Fatalf("hooks sent: %v", fake.hooks)
	}
	sent := fake.hooks[0]
	cfg := sent["config"].(map[string]any)
	secret, _ := cfg["secret"].(string)
	if sent["name"] != "web" || sent["active"] != true || fmt.Sprint(sent["events"]) != "[push]" || cfg["content_type"] != "json" ||
		cfg["url"] != hook.URL || len(secret) < 40 {
		t.Fatalf("create-hook request: %v", sent)
	}
	if strings.Contains(string(r.body), secret) {
		t.Fatal("the secret is in the answer")
	}
	// A delivery signed with that secret is accepted.
	body := githubPayload("https://github.example/octo/app.git", "refs/heads/main", commitA)
	want(t, e.hook(server.GitHubWebhookPath, "push", "gh-1", sign(secret, []byte(body)), body), http.StatusAccepted)
	if pr.count() != 1 {
		t.Fatal("not queued")
	}
}

// grepDir counts the files under dir that contain s.
func grepDir(t *testing.T, dir, s string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), s) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
