package auth

import (
	"context"
	"fmt"
	"net/http"

	"bakery.dev/bakery/api/store"
)

// StartSession stores a new session for user and returns it with its
// secret, which only the browser keeps (the store holds its hash as the
// session's ID). Expired sessions of anybody are removed on the way.
func (a *Auth) StartSession(ctx context.Context, user string) (secret string, s store.Session, err error) {
	acc, err := a.accounts()
	if err != nil {
		return "", store.Session{}, err
	}
	now := a.cfg.Now().UTC()
	if _, err := acc.DeleteExpiredSessions(ctx, now); err != nil {
		a.log.Warn("auth: remove expired sessions", "err", err)
	}
	secret = RandomToken(32)
	s = store.Session{ID: hashSecret(secret), User: user, CSRF: RandomToken(32), CreatedAt: now, ExpiresAt: now.Add(a.cfg.SessionTTL)}
	if err := acc.CreateSession(ctx, s); err != nil {
		return "", store.Session{}, fmt.Errorf("start session: %w", err)
	}
	return secret, s, nil
}

// Session returns the valid session whose secret is secret: an
// ErrNotFound error when there is none or it expired.
func (a *Auth) Session(ctx context.Context, secret string) (store.Session, error) {
	if secret == "" {
		return store.Session{}, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	acc, err := a.accounts()
	if err != nil {
		return store.Session{}, fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	s, err := acc.GetSession(ctx, hashSecret(secret))
	if err != nil {
		return store.Session{}, err
	}
	if !a.cfg.Now().Before(s.ExpiresAt) {
		return store.Session{}, fmt.Errorf("session expired: %w", store.ErrNotFound)
	}
	return s, nil
}

// SessionCookie is the cookie that carries a web UI session's secret.
const SessionCookie = "bakery_session"

// RequestSession returns the valid session of r's SessionCookie, or an
// error wrapping store.ErrNotFound when there is none.
func (a *Auth) RequestSession(r *http.Request) (store.Session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return store.Session{}, fmt.Errorf("session cookie: %w", store.ErrNotFound)
	}
	return a.Session(r.Context(), c.Value)
}

// EndSession removes the session with id (logout); a missing session is
// not an error.
func (a *Auth) EndSession(ctx context.Context, id string) error {
	acc, err := a.accounts()
	if err != nil {
		return err
	}
	return acc.DeleteSession(ctx, id)
}
