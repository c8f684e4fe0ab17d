package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"bakery.dev/bakery/api/store"
)

// TokenPrefix starts every API token, so that a leaked one is recognisable.
const TokenPrefix = "bkr_"

// AdminTokenName is the name of the token created on first start.
const AdminTokenName = "admin"

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

type tokenKey struct{}

// TokenName returns the name of the API token that authenticated the
// request with context ctx, or "".
func TokenName(ctx context.Context) string {
	n, _ := ctx.Value(tokenKey{}).(string)
	return n
}

// authenticate is the one authentication middleware: every request under
// /api/ (except authExceptions) needs "Authorization: Bearer <token>" with a
// token whose SHA-256 hash is stored; otherwise the answer is 401.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !needsToken(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		name, err := s.checkToken(r)
		if err != nil {
			if e, ok := err.(*Error); ok && e.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="bakery"`)
			}
			s.writeError(w, r, err)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.token = name
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, name)))
	})
}

// checkToken returns the name of the request's valid bearer token.
func (s *Server) checkToken(r *http.Request) (string, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", errorf(http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
	}
	h := HashToken(tok)
	t, err := s.store.TokenByHash(r.Context(), h)
	if errors.Is(err, store.ErrNotFound) {
		return "", errorf(http.StatusUnauthorized, "invalid token")
	}
	if err != nil {
		return "", fmt.Errorf("look up token: %w", err)
	}
	// The store found the hash; compare anyway, in constant time, so that
	// a store matching loosely can never let a wrong token in.
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) != 1 {
		return "", errorf(http.StatusUnauthorized, "invalid token")
	}
	return t.Name, nil
}

// NewToken returns a new random API token ("bkr_" + 32 random bytes in
// base64url) and the hash to store for it.
func NewToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("new token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken returns the hex SHA-256 of token: the only form a token is
// stored in.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// EnsureAdminToken bootstraps access on first start: when st holds no token
// at all, it creates the token "admin", stores only its hash, writes the
// token to file (mode 0600, parent directories created 0700; no file when
// file is "") and returns it with created true, so that the caller prints
// it once. When st holds a token already it does nothing.
func EnsureAdminToken(ctx context.Context, st store.Store, file string) (token string, created bool, err error) {
	toks, err := st.ListTokens(ctx)
	if err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	if len(toks) > 0 {
		return "", false, nil
	}
	token, hash, err := NewToken()
	if err != nil {
		return "", false, err
	}
	// The file is written first: a token stored but never written down
	// would lock everybody out, since only its hash is kept.
	if file != "" {
		if err := writeSecret(file, token+"\n"); err != nil {
			return "", false, fmt.Errorf("admin token: %w", err)
		}
	}
	err = st.CreateToken(ctx, store.Token{Name: AdminTokenName, Hash: hash, CreatedAt: time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		if file != "" {
			removeIfContains(file, token+"\n")
		}
		if errors.Is(err, store.ErrAlreadyExists) {
			// Another control plane sharing the store got there first.
			return "", false, nil
		}
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	return token, true, nil
}

// writeSecret atomically writes content to file with mode 0600, creating
// its directory with mode 0700.
func writeSecret(file, content string) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(file, []byte(content), 0o600)
}

// removeIfContains removes file when it holds exactly content (so that a
// token written by a concurrent winner is not removed).
func removeIfContains(file, content string) {
	if b, err := os.ReadFile(file); err == nil && string(b) == content {
		os.Remove(file)
	}
}
