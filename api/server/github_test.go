package server_test

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/github"
	"bakery.dev/bakery/api/github/githubtest"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/sealed"
)

func TestGitHubIntegration(t *testing.T) {
	gh := githubtest.Start(t)
	kr, err := sealed.ParseKeyring(sealed.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	pr := &pushRecorder{}
	e := newEnv(t, func(c *server.Config) {
		c.Keyring = kr
		c.Loop = pr
		c.GitHub = &github.Client{ClientID: githubtest.ClientID, ClientSecret: githubtest.ClientSecret, WebURL: gh.URL, APIURL: gh.APIURL()}
	})
	// Not signed in yet.
	want(t, e.req("GET", "/api/v1/github/repos", "", ""), http.StatusUnauthorized)
	// The callback with a state nobody minted: refused.
	want(t, e.reqToken("GET", server.GitHubCallbackPath+"?code=x&state=forged", "", "", ""), http.StatusUnauthorized)

	// Sign in: the browser follows the authorize URL to the fake GitHub,
	// which sends it back to the callback.
	r := e.req("GET", "/api/v1/github/login", "", "")
	want(t, r, http.StatusOK)
	var login api.GitHubLogin
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
	if n := grepDir(t, e.st.Dir(), githubtest.Token); n != 0 {
		t.Fatalf("the OAuth token is in the clear in %d files", n)
	}

	// Repositories and branches.
	r = e.req("GET", "/api/v1/github/repos", "", "")
	want(t, r, http.StatusOK)
	var repos api.GitHubRepoList
	r.decode(t, &repos)
	if len(repos.Items) != 2 || repos.Items[0].FullName != "octo/app" || repos.Items[0].CloneURL != "https://github.example/octo/app.git" || repos.Items[1].DefaultBranch != "trunk" {
		t.Fatalf("repos: %+v", repos)
	}
	r = e.req("GET", "/api/v1/github/repos/octo/app/branches", "", "")
	want(t, r, http.StatusOK)
	var branches api.GitHubBranchList
	r.decode(t, &branches)
	if fmt.Sprint(branches.Items) != "[{main "+githubtest.MainCommit+"} {dev "+githubtest.DevCommit+"}]" {
		t.Fatalf("branches: %+v", branches)
	}
	want(t, e.req("GET", "/api/v1/github/repos/octo/a%20b/branches", "", ""), http.StatusBadRequest)

	// Register the webhook: GitHub gets the URL and a generated secret.
	r = e.req("POST", "/api/v1/github/repos/octo/app/hooks", "", "")
	want(t, r, http.StatusCreated)
	var hook api.GitHubHook
	r.decode(t, &hook)
	if hook.ID != 12345678 || hook.Repo != "github.example/octo/app" || !strings.HasSuffix(hook.URL, server.GitHubWebhookPath) {
		t.Fatalf("hook: %+v", hook)
	}
	hooks := gh.Hooks()
	if len(hooks) != 1 {
		t.Fatalf("hooks sent: %v", hooks)
	}
	sent := hooks[0]
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
