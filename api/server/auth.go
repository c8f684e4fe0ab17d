package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/store"
)

// authException is a path under /api/ that the bearer-token middleware lets
// through because its handler authenticates the request another way.
type authException struct {
	// prefix matches the cleaned request path: exactly, or as a directory
	// when it ends in "/".
	prefix string
	// why says how the route authenticates instead; it is documentation.
	why string
}

// authExceptions is the complete list of routes under /api/ served without a
// bearer token. Every entry must name how its handler authenticates instead.
// The web UI and its SSE streams are not exceptions: they live outside
// /api/, under /ui/ (package api/ui checks the session cookie, and the CSRF
// token on every change), and reach the API in-process; so does the public,
// read-only installer script (InstallerPath).
var authExceptions = []authException{
	{GitHubCallbackPath, "GitHub OAuth callback: its state must be one minted, at most 10 minutes before, by GET /api/v1/github/login with a valid token (used once)"},
	{GitHubWebhookPath, "push webhook: HMAC-SHA256 of the body (X-Hub-Signature-256) under the repository's webhook secret, compared in constant time"},
	{GenericWebhookPath, "push webhook: HMAC-SHA256 of the body (X-Hub-Signature-256) under the repository's webhook secret, compared in constant time"},
}

// String describes the exception for logs and tests.
func (e authException) String() string { return e.prefix + ": " + e.why }

func (e authException) matches(p string) bool {
	if strings.HasSuffix(e.prefix, "/") {
		return strings.HasPrefix(p, e.prefix)
	}
	return p == e.prefix
}

// needsToken reports whether a request for urlPath must carry a bearer
// token: everything under /api/ except authExceptions.
func needsToken(urlPath string) bool {
	p := path.Clean("/" + urlPath)
	if p != "/api" && !strings.HasPrefix(p, "/api/") {
		return false
	}
	for _, e := range authExceptions {
		if e.matches(p) {
			return false
		}
	}
	return true
}

// TokenName returns who the request with context ctx acts for, as
// recorded with what it asks: the API token's name, "user:<name>" for a
// web UI user, or "".
func TokenName(ctx context.Context) string { return auth.CallerOf(ctx).Name() }

// uiUser returns the web UI user a request is served for in-process, or
// "" for a request that came with an API token.
func uiUser(ctx context.Context) string { return auth.CallerOf(ctx).User }

// authenticate is the one authentication middleware: every request under
// /api/ (except authExceptions) needs "Authorization: Bearer <token>" with a
// token whose SHA-256 hash is stored (package auth checks it); otherwise
// the answer is 401.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !needsToken(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		name, err := s.auth.CheckBearer(r)
		if errors.Is(err, auth.ErrNoToken) || errors.Is(err, auth.ErrInvalidToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bakery"`)
			err = errorf(http.StatusUnauthorized, "%s", err)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.token = name
		}
		next.ServeHTTP(w, r.WithContext(auth.WithCaller(r.Context(), auth.Caller{Token: name})))
	})
}

// authConfig is the configuration of the server's one auth.Auth: API
// tokens in the store; users and sessions in cfg.Auth.Accounts or else
// the store's, with cfg.Auth's login policy.
func authConfig(cfg Config, log *slog.Logger) auth.Config {
	ac := cfg.Auth
	ac.Tokens = cfg.Store
	if ac.Accounts == nil {
		ac.Accounts, _ = cfg.Store.(store.Accounts)
	}
	if ac.Logger == nil {
		ac.Logger = log
	}
	if ac.Attempts == nil {
		ac.Attempts, _ = cfg.Store.(store.Attempts)
	}
	return ac
}
