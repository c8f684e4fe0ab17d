package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"bakery.dev/bakery/api/store"
)

// TokenPrefix starts every API token, so that a leaked one is recognisable.
const TokenPrefix = "bkr_"

// AdminTokenName is the name of the token created on first start.
const AdminTokenName = "admin"

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
func HashToken(token string) string { return hashSecret(token) }

// CheckTokenName returns an ErrInvalid error unless name is a valid token
// name (a DNS-1123 label of at most 63 characters).
func CheckTokenName(name string) error {
	if err := store.CheckSettingName(name); err != nil {
		// The store's message names a setting; this is a token.
		reason := strings.TrimPrefix(strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "), "setting name ")
		return fmt.Errorf("%w: token name %s", store.ErrInvalid, reason)
	}
	return nil
}

// CheckBearer returns the name of the token r authenticates with
// ("Authorization: Bearer <token>", the scheme in any case):
// ErrNoToken without one, ErrInvalidToken for one that is not stored.
func (a *Auth) CheckBearer(r *http.Request) (string, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", ErrNoToken
	}
	return a.CheckToken(r.Context(), tok)
}

// CheckToken returns the name of the stored token tok, or ErrInvalidToken.
func (a *Auth) CheckToken(ctx context.Context, tok string) (string, error) {
	h := HashToken(tok)
	t, err := a.cfg.Tokens.TokenByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrInvalidToken
	}
	if err != nil {
		return "", fmt.Errorf("look up token: %w", err)
	}
	// The store found the hash; compare anyway, in constant time, so that
	// a store matching loosely can never let a wrong token in.
	if !EqualSecret(t.Hash, h) {
		return "", ErrInvalidToken
	}
	return t.Name, nil
}

// CreateToken mints and stores the token name and returns it with its
// secret, which is shown once and kept nowhere: ErrInvalid for a bad name,
// ErrAlreadyExists when the name is taken.
func (a *Auth) CreateToken(ctx context.Context, name string) (secret string, t store.Token, err error) {
	if err := CheckTokenName(name); err != nil {
		return "", store.Token{}, err
	}
	secret, hash, err := NewToken()
	if err != nil {
		return "", store.Token{}, err
	}
	t = store.Token{Name: name, Hash: hash, CreatedAt: a.stamp()}
	if err := a.cfg.Tokens.CreateToken(ctx, t); err != nil {
		return "", store.Token{}, err // names the token already
	}
	return secret, t, nil
}

// ListTokens returns every token (with its hash: callers show only names
// and times) sorted by name.
func (a *Auth) ListTokens(ctx context.Context) ([]store.Token, error) {
	return a.cfg.Tokens.ListTokens(ctx)
}

// RevokeToken deletes the token name and returns it; ErrNotFound when
// there is none.
func (a *Auth) RevokeToken(ctx context.Context, name string) (store.Token, error) {
	toks, err := a.cfg.Tokens.ListTokens(ctx)
	if err != nil {
		return store.Token{}, err
	}
	var t store.Token
	for _, x := range toks {
		if x.Name == name {
			t = x
		}
	}
	if err := a.cfg.Tokens.DeleteToken(ctx, name); err != nil {
		return store.Token{}, err // names the token already
	}
	t.Name = name
	return t, nil
}

// EnsureAdminToken bootstraps access on first start: when st holds no token
// at all, it creates the token "admin", stores only its hash, writes the
// token to file (mode 0600, parent directories created 0700; no file when
// file is "") and returns it with created true, so that the caller prints
// it once. When st holds a token already it does nothing.
func EnsureAdminToken(ctx context.Context, st store.Tokens, file string) (token string, created bool, err error) {
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
	err = st.CreateToken(ctx, store.Token{Name: AdminTokenName, Hash: hash, CreatedAt: nowStamp()})
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
