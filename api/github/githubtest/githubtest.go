// Package githubtest is a local stand-in for the few GitHub endpoints
// Bakery uses (OAuth web flow, list repositories, get a repository, list
// branches, create a webhook), with the response shapes of GitHub's
// public REST documentation. Tests of package github, of the API server
// and of the web UI point a github.Client at it.
package githubtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Credentials the fake accepts.
const (
	ClientID     = "Iv1.clientid"
	ClientSecret = "client-secret-xyz"
	Code         = "code-123"
	Token        = "gho_fakeTokenValue0123456789"
)

// Branch heads of octo/app.
const (
	MainCommit = "c5b97d5ae6c19d5c5df71a34c7fbeeda2479ccbc"
	DevCommit  = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
)

// Server is the fake GitHub. Its web pages are at URL, its REST API at
// URL+"/api/v3" (the GitHub Enterprise layout).
type Server struct {
	*httptest.Server
	t  testing.TB
	mu sync.Mutex
	// hooks are the create-webhook request bodies received.
	hooks []map[string]any
	// authorized counts the sign-ins approved.
	authorized int
}

// Start starts a fake GitHub, closed when the test ends.
func Start(t testing.TB) *Server {
	f := &Server{t: t}
	f.Server = httptest.NewServer(f)
	t.Cleanup(f.Close)
	return f
}

// APIURL is the REST API's base URL.
func (f *Server) APIURL() string { return f.URL + "/api/v3" }

// Hooks returns the create-webhook request bodies received so far.
func (f *Server) Hooks() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.hooks...)
}

// Authorized returns how many sign-ins the fake user approved.
func (f *Server) Authorized() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.authorized
}

// ServeHTTP implements http.Handler.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
			if q.Get("client_id") != ClientID || !strings.Contains(q.Get("scope"), "admin:repo_hook") {
				t.Errorf("authorize: %v", q)
			}
			f.mu.Lock()
			f.authorized++
			f.mu.Unlock()
			// The user approves: back to the app with a code.
			http.Redirect(w, r, q.Get("redirect_uri")+"?code="+Code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
		case "/login/oauth/access_token":
			r.ParseForm()
			if r.Method != http.MethodPost || r.Form.Get("client_secret") != ClientSecret || r.Form.Get("code") != Code || r.Header.Get("Accept") != "application/json" {
				jsonOut(200, map[string]string{"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})
				return
			}
			jsonOut(200, map[string]string{"access_token": Token, "scope": "repo,admin:repo_hook", "token_type": "bearer"})
		default:
			http.NotFound(w, r)
		}
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/api/v3/") {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+Token {
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
			map[string]any{"name": "main", "commit": map[string]string{"sha": MainCommit, "url": "https://api.github.example/x"}, "protected": true},
			map[string]any{"name": "dev", "commit": map[string]string{"sha": DevCommit, "url": "https://api.github.example/y"}, "protected": false},
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
		cfg, _ := body["config"].(map[string]any)
		jsonOut(201, map[string]any{"type": "Repository", "id": 12345678, "name": "web", "active": true, "events": body["events"], "config": map[string]any{
			"content_type": "json", "insecure_ssl": "0", "url": cfg["url"]}})
	default:
		jsonOut(404, map[string]string{"message": "Not Found"})
	}
}
