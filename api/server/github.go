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
	"bakery.dev/bakery/api/ui"
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

// oauthStates are the pending sign-ins: state → who asked, expiry.
type oauthStates struct {
	mu sync.Mutex
	m  map[string]oauthState
}

// oauthState is a pending sign-in.
type oauthState struct {
	// owner is whose GitHub token the sign-in stores: an API token's name
	// or "user:<name>" for a web UI user (see githubOwner).
	owner string
	// uiUser is the web UI user who started the sign-in ("" for the CLI);
	// the callback must come with that user's UI session, and the browser
	// goes back to next, a page of the UI.
	uiUser, next string
	expires      time.Time
}

const oauthStateTTL = 10 * time.Minute

func (o *oauthStates) mint(st0 oauthState) (string, error) {
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
	st0.expires = now.Add(oauthStateTTL)
	o.m[st] = st0
	return st, nil
}

// take returns and forgets state's sign-in.
func (o *oauthStates) take(state string) (oauthState, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s, ok := o.m[state]
	delete(o.m, state)
	if !ok || time.Now().After(s.expires) {
		return oauthState{}, false
	}
	return s, true
}

// githubOwner is whose GitHub sign-in a request uses: for a web UI
// request the logged-in user ("user:<name>"; every user signs in to
// GitHub for themselves), otherwise the API token's name (the CLI). API
// token names cannot contain ':', so the two never meet.
func githubOwner(ctx context.Context) string {
	if u := uiUser(ctx); u != "" {
		return "user:" + u
	}
	return TokenName(ctx)
}

func (s *Server) githubRoutes(r *mux.Router) {
	const p = "/api/v1/github"
	r.Handle(p+"/login", s.wrap(http.StatusOK, s.githubLogin)).Methods(http.MethodGet)
	r.Handle(GitHubCallbackPath, http.HandlerFunc(s.githubCallback)).Methods(http.MethodGet)
	r.Handle(p+"/user", s.wrap(http.StatusOK, s.githubUser)).Methods(http.MethodGet)
	r.Handle(p+"/repos", s.wrap(http.StatusOK, s.githubRepos)).Methods(http.MethodGet)
	r.Handle(p+"/repos/{owner}/{repo}", s.wrap(http.StatusOK, s.githubRepo)).Methods(http.MethodGet)
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
	st := oauthState{owner: githubOwner(r.Context())}
	if u := uiUser(r.Context()); u != "" {
		// The web UI asks; the browser comes back to its page next.
		st.uiUser, st.next = u, uiReturnPath(r.URL.Query().Get("next"))
	}
	state, err := s.oauth.mint(st)
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

// githubCallback is where GitHub sends the browser back. A sign-in the
// CLI started is answered with JSON; one the web UI started must come
// with the same user's UI session, and sends the browser back to the UI
// page it came from, with ?github=signed-in (or =failed; the reason is
// logged).
func (s *Server) githubCallback(w http.ResponseWriter, r *http.Request) {
	st, ok := s.oauth.take(r.URL.Query().Get("state"))
	if !ok {
		s.writeError(w, r, errorf(http.StatusUnauthorized, "unknown or expired sign-in state: start again with GET /api/v1/github/login"))
		return
	}
	if st.uiUser == "" {
		out, err := s.githubFinish(r, st)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	if s.ui == nil || s.ui.SessionUser(r) != st.uiUser {
		// Someone else's browser completes this user's sign-in (or the
		// session ended): storing the token would hand another person's
		// GitHub account to this user.
		s.writeError(w, r, errorf(http.StatusUnauthorized, "this GitHub sign-in was started by another Bakery user, or your web UI session ended: log in and start again"))
		return
	}
	result := "signed-in"
	if _, err := s.githubFinish(r, st); err != nil {
		s.log.Warn("GitHub sign-in failed", "user", st.uiUser, "err", err)
		result = "failed"
	}
	next, _ := url.Parse(st.next)
	q := next.Query()
	q.Set("github", result)
	next.RawQuery = q.Encode()
	http.Redirect(w, r, next.String(), http.StatusSeeOther)
}

// githubFinish exchanges the callback's code for a token and stores it,
// sealed, for st.owner.
func (s *Server) githubFinish(r *http.Request, st oauthState) (*GitHubSignedIn, error) {
	g, err := s.github()
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
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
	if err := s.putSealed(r.Context(), githubTokenSetting(st.owner), []byte(tok.AccessToken)); err != nil {
		return nil, err
	}
	var user struct {
		Login string `json:"login"`
	}
	if err := s.githubAPI(r.Context(), g, tok.AccessToken, http.MethodGet, "/user", nil, &user); err != nil {
		return nil, err
	}
	return &GitHubSignedIn{Login: user.Login}, nil
}

// uiReturnPath is next when it is a page of the web UI (no open
// redirects), else the deployment editor.
func uiReturnPath(next string) string {
	if strings.HasPrefix(next, ui.Prefix+"/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") {
		if u, err := url.Parse(next); err == nil && u.Scheme == "" && u.Host == "" {
			return u.String()
		}
	}
	return ui.Prefix + "/editor"
}

// githubTokenSetting is the setting holding the GitHub token of owner
// (see githubOwner).
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

// githubToken returns the GitHub token the request's caller signed in
// with (see githubOwner).
func (s *Server) githubToken(ctx context.Context) (string, error) {
	ss, kr, err := s.secretsReady()
	if err != nil {
		return "", err
	}
	name := githubTokenSetting(githubOwner(ctx))
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

// githubRepo answers GET /api/v1/github/repos/{owner}/{repo}: one
// repository (its clone URLs and default branch).
func (s *Server) githubRepo(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	base, err := repoPath(r)
	if err != nil {
		return nil, err
	}
	var x struct {
		FullName      string `json:"full_name"`
		Private       bool   `json:"private"`
		CloneURL      string `json:"clone_url"`
		SSHURL        string `json:"ssh_url"`
		HTMLURL       string `json:"html_url"`
		DefaultBranch string `json:"default_branch"`
	}
	if err := s.githubAPI(r.Context(), g, tok, http.MethodGet, base, nil, &x); err != nil {
		return nil, err
	}
	return GitHubRepo(x), nil
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
