package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/github"
	"bakery.dev/bakery/api/store"
)

// GitHubCallbackPath is where GitHub sends the user back after sign-in.
const GitHubCallbackPath = "/api/v1/github/callback"

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

func (s *Server) github() (*github.Client, error) {
	if s.cfg.GitHub == nil || s.cfg.GitHub.ClientID == "" {
		return nil, errorf(http.StatusServiceUnavailable, "the GitHub integration is not configured (--github-client-id and BAKERY_GITHUB_CLIENT_SECRET)")
	}
	return s.cfg.GitHub, nil
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
	return api.GitHubLogin{AuthorizeURL: g.AuthorizeURL(s.externalURL(r)+GitHubCallbackPath, state)}, nil
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
	if sess, err := s.auth.RequestSession(r); s.ui == nil || err != nil || sess.User != st.uiUser {
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
func (s *Server) githubFinish(r *http.Request, st oauthState) (*api.GitHubSignedIn, error) {
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
	token, err := g.Exchange(r.Context(), code, s.externalURL(r)+GitHubCallbackPath)
	if err != nil {
		return nil, err
	}
	if err := s.putGitHubToken(r.Context(), st.owner, []byte(token)); err != nil {
		return nil, err
	}
	login, err := g.User(r.Context(), token)
	if err != nil {
		return nil, err
	}
	return &api.GitHubSignedIn{Login: login}, nil
}

// uiReturnPath is next when it is a page of the web UI (no open
// redirects), else the deployment editor.
func uiReturnPath(next string) string {
	if strings.HasPrefix(next, api.UIPrefix+"/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") {
		if u, err := url.Parse(next); err == nil && u.Scheme == "" && u.Host == "" {
			return u.String()
		}
	}
	return api.UIPrefix + "/editor"
}

// githubTokenSetting is the setting holding the GitHub token of owner
// (see githubOwner; a kind of sealed setting in the registry,
// store.SealedSettings).
func githubTokenSetting(owner string) string { return store.GitHubTokenSetting.Name(owner) }

// putGitHubToken stores the GitHub token of owner, sealed.
func (s *Server) putGitHubToken(ctx context.Context, owner string, token []byte) error {
	ss, kr, err := s.secretsReady()
	if err != nil {
		return err
	}
	name := githubTokenSetting(owner)
	b, err := store.GitHubTokenSetting.Seal(kr, name, token)
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
	plain, err := store.GitHubTokenSetting.Open(kr, name, b)
	if err != nil {
		return "", fmt.Errorf("open the GitHub token: %w", err)
	}
	return string(plain), nil
}

func (s *Server) githubUser(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	login, err := g.User(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	return api.GitHubSignedIn{Login: login}, nil
}

func (s *Server) githubSession(r *http.Request) (*github.Client, string, error) {
	g, err := s.github()
	if err != nil {
		return nil, "", err
	}
	tok, err := s.githubToken(r.Context())
	return g, tok, err
}

func (s *Server) githubRepos(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	repos, err := g.Repos(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	return api.GitHubRepoList{Items: repos}, nil
}

var githubName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// repoOf returns the {owner} and {repo} of the path, checked to be GitHub
// names.
func repoOf(r *http.Request) (string, string, error) {
	v := mux.Vars(r)
	for _, k := range []string{"owner", "repo"} {
		if !githubName.MatchString(v[k]) || v[k] == "." || v[k] == ".." {
			return "", "", badField(k, "%q is not a GitHub owner or repository name", clip(v[k]))
		}
	}
	return v["owner"], v["repo"], nil
}

// githubRepo answers GET /api/v1/github/repos/{owner}/{repo}: one
// repository (its clone URLs and default branch).
func (s *Server) githubRepo(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	owner, name, err := repoOf(r)
	if err != nil {
		return nil, err
	}
	return g.Repo(r.Context(), tok, owner, name)
}

func (s *Server) githubBranches(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	owner, name, err := repoOf(r)
	if err != nil {
		return nil, err
	}
	bs, err := g.Branches(r.Context(), tok, owner, name)
	if err != nil {
		return nil, err
	}
	return api.GitHubBranchList{Items: bs}, nil
}

// githubCreateHook mints (or rotates) the repository's webhook secret and
// registers a push webhook with it; the secret goes to GitHub and the
// store (sealed), never into the answer.
func (s *Server) githubCreateHook(w http.ResponseWriter, r *http.Request) (any, error) {
	g, tok, err := s.githubSession(r)
	if err != nil {
		return nil, err
	}
	owner, name, err := repoOf(r)
	if err != nil {
		return nil, err
	}
	repo, err := g.Repo(r.Context(), tok, owner, name)
	if err != nil {
		return nil, err
	}
	ws, err := s.CreateWebhookSecret(r.Context(), repo.CloneURL, true)
	if err != nil {
		return nil, err
	}
	hookURL := s.externalURL(r) + GitHubWebhookPath
	id, err := g.CreateHook(r.Context(), tok, owner, name, hookURL, ws.Secret)
	if err != nil {
		return nil, err
	}
	return api.GitHubHook{ID: id, Repo: ws.Repo, URL: hookURL}, nil
}
