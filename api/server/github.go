package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api/store"
)

// GitHubCallbackPath is where GitHub sends the user back after sign-in.
const GitHubCallbackPath = "/api/v1/github/callback"

// GitHubConfig configures the GitHub integration: OAuth sign-in, listing
// repositories and branches, registering push webhooks.
type GitHubConfig struct {
	// ClientID and ClientSecret identify the OAuth app.
	ClientID, ClientSecret string
	// WebURL is where OAuth pages live (default https://github.com;
	// GitHub Enterprise: https://HOST).
	WebURL string
	// APIURL is the REST API (default https://api.github.com; GitHub
	// Enterprise: https://HOST/api/v3).
	APIURL string
	// HTTPClient talks to GitHub (default: 30 s timeout).
	HTTPClient *http.Client
}

func (g *GitHubConfig) web() string {
	if g.WebURL != "" {
		return strings.TrimRight(g.WebURL, "/")
	}
	return "https://github.com"
}

func (g *GitHubConfig) api() string {
	if g.APIURL != "" {
		return strings.TrimRight(g.APIURL, "/")
	}
	return "https://api.github.com"
}

func (g *GitHubConfig) client() *http.Client {
	if g.HTTPClient != nil {
		return g.HTTPClient
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// githubScopes are what Bakery asks for: private repositories (to list
// them and their branches) and repository hooks (to register webhooks).
const githubScopes = "repo admin:repo_hook"

// oauthStates are the pending sign-ins: state → API token name, expiry.
type oauthStates struct {
	mu sync.Mutex
	m  map[string]oauthState
}

type oauthState struct {
	token   string
	expires time.Time
}

const oauthStateTTL = 10 * time.Minute

func (o *oauthStates) mint(token string) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	st := base64.RawURLEncoding.EncodeToString(b)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]oauthState{}
	}
	now := time.Now()
	for k, v := range o.m {
		if now.After(v.expires) {
			delete(o.m, k)
		}
	}
	o.m[st] = oauthState{token: token, expires: now.Add(oauthStateTTL)}
	return st, nil
}

// take returns and forgets state's API token name.
func (o *oauthStates) take(state string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s, ok := o.m[state]
	delete(o.m, state)
	if !ok || time.Now().After(s.expires) {
		return "", false
	}
	return s.token, true
}

func (s *Server) githubRoutes(r *mux.Router) {
	const p = "/api/v1/github"
	r.Handle(p+"/login", s.wrap(http.StatusOK, s.githubLogin)).Methods(http.MethodGet)
	r.Handle(GitHubCallbackPath, s.wrap(http.StatusOK, s.githubCallback)).Methods(http.MethodGet)
	r.Handle(p+"/user", s.wrap(http.StatusOK, s.githubUser)).Methods(http.MethodGet)
	r.Handle(p+"/repos", s.wrap(http.StatusOK, s.githubRepos)).Methods(http.MethodGet)
	r.Handle(p+"/repos/{owner}/{repo}/branches", s.wrap(http.StatusOK, s.githubBranches)).Methods(http.MethodGet)
	r.Handle(p+"/repos/{owner}/{repo}/hooks", s.wrap(http.StatusCreated, s.githubCreateHook)).Methods(http.MethodPost)
}

func (s *Server) github() (*GitHubConfig, error) {
	if s.cfg.GitHub == nil || s.cfg.GitHub.ClientID == "" {
		return nil, errorf(http.StatusServiceUnavailable, "the GitHub integration is not configured (--github-client-id and BAKERY_GITHUB_CLIENT_SECRET)")
	}
	return s.cfg.GitHub, nil
}

// GitHubLogin is the answer of GET /api/v1/github/login: open
// AuthorizeURL in a browser to sign in.
type GitHubLogin struct {
	AuthorizeURL string `json:"authorizeURL"`
}

func (s *Server) githubLogin(w http.ResponseWriter, r *http.Request) (any, error) {
	g, err := s.github()
	if err != nil {
		return nil, err
	}
	if _, _, err := s.secretsReady(); err != nil {
		return nil, err
	}
	state, err := s.oauth.mint(TokenName(r.Context()))
	if err != nil {
		return nil, err
	}
	q := url.Values{"client_id": {g.ClientID}, "redirect_uri": {s.externalURL(r) + GitHubCallbackPath}, "scope": {githubScopes}, "state": {state}}
	return GitHubLogin{AuthorizeURL: g.web() + "/login/oauth/authorize?" + q.Encode()}, nil
}

// GitHubSignedIn is the answer of the OAuth callback.
type GitHubSignedIn struct {
	Login string `json:"login"`
}

func (s *Server) githubCallback(w http.ResponseWriter, r *http.Request) (any, error) {
	g, err := s.github()
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	tokenName, ok := s.oauth.take(q.Get("state"))
	if !ok {
		return nil, errorf(http.StatusUnauthorized, "unknown or expired sign-in state: start again with GET /api/v1/github/login")
	}
	if e := q.Get("error"); e != "" {
		return nil, errorf(http.StatusBadRequest, "GitHub refused the sign-in: %s", clip(e))
	}
	code := q.Get("code")
	if code == "" {
		return nil, badField("code", "is required")
	}
	form := url.Values{"client_id": {g.ClientID}, "client_secret": {g.ClientSecret}, "code": {code}, "redirect_uri": {s.externalURL(r) + GitHubCallbackPath}}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, g.web()+"/login/oauth/access_token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Scope       string `json:"scope"`
		Error       string `json:"error"`
		ErrorDesc   string `json:"error_description"`
	}
	if err := s.githubDo(g, req, &tok); err != nil {
		return nil, err
	}
	if tok.Error != "" || tok.AccessToken == "" {
		return nil, errorf(http.StatusBadGateway, "GitHub token exchange failed: %s %s", clip(tok.Error), clip(tok.ErrorDesc))
	}
	if err := s.putSealed(r.Context(), githubTokenSetting(tokenName), []byte(tok.AccessToken)); err != nil {
		return nil, err
	}
	var user struct {
		Login string `json:"login"`
	}
	if err := s.githubAPI(r.Context(), g, tok.AccessToken, http.MethodGet, "/user", nil, &user); err != nil {
		return nil, err
	}
	return GitHubSignedIn{Login: user.Login}, nil
}

// githubTokenSetting is the setting holding the GitHub token of the API
// token named name.
func githubTokenSetting(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "github-token-" + hex.EncodeToString(sum[:])[:32]
}

func (s *Server) putSealed(ctx context.Context, name string, value []byte) error {
	ss, kr, err := s.secretsReady()
	if err != nil {
		return err
	}
	b, err := kr.Seal(value, []byte(name))
	if err != nil {
		return err
	}
	return ss.PutSetting(ctx, name, b)
}

// githubToken returns the signed-in GitHub token of the request's API token.
func (s *Server) githubToken(ctx context.Context) (string, error) {
	ss, kr, err := s.secretsReady()
	if err != nil {
		return "", err
	}
	name := githubTokenSetting(TokenName(ctx))
	b, err := ss.GetSetting(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", errorf(http.StatusUnauthorized, "not signed in to GitHub: GET /api/v1/github/login first")
	}
	if err != nil {
		return "", err
	}
	plain, err := kr.Open(b, []byte(name))
	if err != nil {
		return "", fmt.Errorf("open the GitHub token: %w", err)
	}
	return string(plain), nil
}

// githubAPI calls the REST API with the user's token.
func (s *Server) githubAPI(ctx context.Context, g *GitHubConfig, token, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.api()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return s.githubDo(g, req, out)
}

func (s *Server) githubDo(g *GitHubConfig, req *http.Request, out any) error {
	resp, err := g.client().Do(req)
	if err != nil {
		return errorf(http.StatusBadGateway, "GitHub: %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return errorf(http.StatusBadGateway, "GitHub: read answer: %v", err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return errorf(http.StatusUnauthorized, "GitHub refused the token (sign in again)")
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(b, &e)
		return errorf(http.StatusBadGateway, "GitHub: %s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, clip(e.Message))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return errorf(http.StatusBadGateway, "GitHub: %s %s: %v", req.Method, req.URL.Path, err)
	}
	return nil
}

func (s *Server) githubUser(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	var user struct {
		Login string `json:"login"`
	}
	if err := s.githubAPI(r.Context(), g, tok, http.MethodGet, "/user", nil, &user); err != nil {
		return nil, err
	}
	return GitHubSignedIn{Login: user.Login}, nil
}

func (s *Server) githubSession(r *http.Request) (*GitHubConfig, string, error) {
	g, err := s.github()
	if err != nil {
		return nil, "", err
	}
	tok, err := s.githubToken(r.Context())
	return g, tok, err
}

// GitHubRepo is one repository the signed-in user can reach.
type GitHubRepo struct {
	FullName      string `json:"fullName"`
	Private       bool   `json:"private"`
	CloneURL      string `json:"cloneURL"`
	SSHURL        string `json:"sshURL"`
	HTMLURL       string `json:"htmlURL"`
	DefaultBranch string `json:"defaultBranch"`
}

// GitHubRepoList is the answer of GET /api/v1/github/repos.
type GitHubRepoList struct {
	Items []GitHubRepo `json:"items"`
}

// maxGitHubPages bounds the pages read of a list (100 items a page).
const maxGitHubPages = 10

func (s *Server) githubRepos(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	out := GitHubRepoList{Items: []GitHubRepo{}}
	for page := 1; page <= maxGitHubPages; page++ {
		var repos []struct {
			FullName      string `json:"full_name"`
			Private       bool   `json:"private"`
			CloneURL      string `json:"clone_url"`
			SSHURL        string `json:"ssh_url"`
			HTMLURL       string `json:"html_url"`
			DefaultBranch string `json:"default_branch"`
		}
		path := fmt.Sprintf("/user/repos?per_page=100&sort=pushed&page=%d", page)
		if err := s.githubAPI(r.Context(), g, tok, http.MethodGet, path, nil, &repos); err != nil {
			return nil, err
		}
		for _, x := range repos {
			out.Items = append(out.Items, GitHubRepo(x))
		}
		if len(repos) < 100 {
			break
		}
	}
	return out, nil
}

var githubName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

func repoPath(r *http.Request) (string, error) {
	v := mux.Vars(r)
	for _, k := range []string{"owner", "repo"} {
		if !githubName.MatchString(v[k]) || v[k] == "." || v[k] == ".." {
			return "", badField(k, "%q is not a GitHub owner or repository name", clip(v[k]))
		}
	}
	return "/repos/" + v["owner"] + "/" + v["repo"], nil
}

// GitHubBranchList is the answer of GET /api/v1/github/repos/{owner}/{repo}/branches.
type GitHubBranchList struct {
	Items []GitHubBranch `json:"items"`
}

// GitHubBranch is one branch and its head commit.
type GitHubBranch struct {
	Name   string `json:"name"`
	Commit string `json:"commit"`
}

func (s *Server) githubBranches(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	base, err := repoPath(r)
	if err != nil {
		return nil, err
	}
	out := GitHubBranchList{Items: []GitHubBranch{}}
	for page := 1; page <= maxGitHubPages; page++ {
		var bs []struct {
			Name   string `json:"name"`
			Commit struct {
				SHA string `json:"sha"`
			} `json:"commit"`
		}
		if err := s.githubAPI(r.Context(), g, tok, http.MethodGet, fmt.Sprintf("%s/branches?per_page=100&page=%d", base, page), nil, &bs); err != nil {
			return nil, err
		}
		for _, b := range bs {
			out.Items = append(out.Items, GitHubBranch{Name: b.Name, Commit: b.Commit.SHA})
		}
		if len(bs) < 100 {
			break
		}
	}
	return out, nil
}

// GitHubHook is the answer of POST /api/v1/github/repos/{owner}/{repo}/hooks.
type GitHubHook struct {
	ID   int64  `json:"id"`
	Repo string `json:"repo"`
	URL  string `json:"url"`
}

// githubCreateHook mints (or rotates) the repository's webhook secret and
// registers a push webhook with it; the secret goes to GitHub and the
// store (sealed), never into the answer.
func (s *Server) githubCreateHook(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	base, err := repoPath(r)
	if err != nil {
		return nil, err
	}
	var repo struct {
		CloneURL string `json:"clone_url"`
	}
	if err := s.githubAPI(r.Context(), g, tok, http.MethodGet, base, nil, &repo); err != nil {
		return nil, err
	}
	ws, err := s.CreateWebhookSecret(r.Context(), repo.CloneURL, true)
	if err != nil {
		return nil, err
	}
	hookURL := s.externalURL(r) + GitHubWebhookPath
	body := map[string]any{
		"name": "web", "active": true, "events": []string{"push"},
		"config": map[string]string{"url": hookURL, "content_type": "json", "secret": ws.Secret, "insecure_ssl": "0"},
	}
	var hook struct {
		ID int64 `json:"id"`
	}
	if err := s.githubAPI(r.Context(), g, tok, http.MethodPost, base+"/hooks", body, &hook); err != nil {
		return nil, err
	}
	return GitHubHook{ID: hook.ID, Repo: ws.Repo, URL: hookURL}, nil
}
