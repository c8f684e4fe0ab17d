package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"bakery.dev/bakery/api/store"
)

// Cookie names.
const (
	// SessionCookie carries the session's secret.
	SessionCookie = "bakery_session"
	// preCookie carries the CSRF token of the login and setup forms,
	// which are sent before there is a session (double-submit).
	preCookie = "bakery_pre"
	// CSRFField is the form field, and CSRFHeader the header (htmx), that
	// carries the session's CSRF token.
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
)

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// maxPasswordLen is bcrypt's limit.
const maxPasswordLen = 72

// session is a logged-in browser.
type session = store.Session

// randomToken returns n random bytes in base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("ui: crypto/rand: %v", err)) // never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is the form a session secret is stored in.
func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func equalSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// CheckPassword returns an error unless pw is acceptable as a password.
func CheckPassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return fmt.Errorf("password: must be at least %d characters", MinPasswordLen)
	case len(pw) > maxPasswordLen:
		return fmt.Errorf("password: must be at most %d bytes", maxPasswordLen)
	}
	return nil
}

// HashPassword checks pw and returns its bcrypt hash with cost (0: the
// default cost).
func HashPassword(pw string, cost int) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CreateUser creates user name with password pw in a (for `bakery admin
// create` and the setup page).
func CreateUser(ctx context.Context, a store.Accounts, name, pw string, cost int, now time.Time) error {
	if err := store.CheckUserName(name); err != nil {
		return err
	}
	h, err := HashPassword(pw, cost)
	if err != nil {
		return err
	}
	return a.CreateUser(ctx, store.User{Name: name, PasswordHash: h, CreatedAt: now.UTC().Truncate(time.Second)})
}

// NeedsSetup returns a new setup token when a holds no user yet (the
// caller prints the link and passes the token in Config.SetupToken), or
// "" when there are users.
func NeedsSetup(ctx context.Context, a store.Accounts) (string, error) {
	us, err := a.ListUsers(ctx)
	if err != nil {
		return "", fmt.Errorf("ui setup: %w", err)
	}
	if len(us) > 0 {
		return "", nil
	}
	return randomToken(24), nil
}

// secure reports whether cookies set in answer to r get Secure: when r
// came over TLS, or the server is known to be reached over https.
func (u *UI) secure(r *http.Request) bool { return r.TLS != nil || u.cfg.SecureCookies }

// authed wraps a handler that needs a logged-in user: without a valid
// session a GET is redirected to the login page and anything else gets
// 401; a request that changes state must carry the session's CSRF token.
func (u *UI) authed(h func(w http.ResponseWriter, r *http.Request, s *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := u.session(r)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				u.log.Error("ui: read session", "err", err)
				u.errorPage(w, r, nil, http.StatusInternalServerError, "Could not read the session.")
				return
			}
			if r.Method == http.MethodGet {
				next := url.Values{"next": {r.URL.RequestURI()}}
				http.Redirect(w, r, Prefix+"/login?"+next.Encode(), http.StatusSeeOther)
				return
			}
			u.errorPage(w, r, nil, http.StatusUnauthorized, "You are not logged in (or your session expired).")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			tok := r.Header.Get(CSRFHeader)
			if tok == "" {
				tok = r.PostFormValue(CSRFField)
			}
			if !equalSecret(s.CSRF, tok) {
				u.errorPage(w, r, s, http.StatusForbidden, "The form's CSRF token is missing or wrong: reload the page and try again.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, s.User)), s)
	})
}

// session returns the request's valid session or ErrNotFound.
func (u *UI) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, fmt.Errorf("session cookie: %w", store.ErrNotFound)
	}
	s, err := u.cfg.Accounts.GetSession(r.Context(), hashSecret(c.Value))
	if err != nil {
		return nil, err
	}
	if !u.cfg.Now().Before(s.ExpiresAt) {
		return nil, fmt.Errorf("session expired: %w", store.ErrNotFound)
	}
	return &s, nil
}

// SessionUser returns the user of r's valid session, or "" (package
// server checks it when GitHub sends a browser back from a sign-in the
// UI started).
func (u *UI) SessionUser(r *http.Request) string {
	s, err := u.session(r)
	if err != nil {
		return ""
	}
	return s.User
}

// preToken returns the pre-session CSRF token of r's cookie, setting a new
// cookie when there is none.
func (u *UI) preToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	tok := randomToken(24)
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: tok, Path: Prefix + "/", HttpOnly: true, Secure: u.secure(r), SameSite: http.SameSiteStrictMode})
	return tok
}

// checkPre reports whether the form's CSRF token matches the pre-session
// cookie.
func checkPre(r *http.Request) bool {
	c, err := r.Cookie(preCookie)
	return err == nil && equalSecret(c.Value, r.PostFormValue(CSRFField))
}

// safeNext returns next when it is a path inside the UI, else the
// deployments page (no open redirects).
func safeNext(next string) string {
	if strings.HasPrefix(next, Prefix+"/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") {
		if pu, err := url.Parse(next); err == nil && pu.Host == "" && pu.Scheme == "" {
			return next
		}
	}
	return Prefix + "/deployments"
}

type loginData struct {
	Name, Next string
	Setup      bool
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	if s, err := u.session(r); err == nil && s != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	p := page{Title: "Log in", CSRF: u.preToken(w, r), Data: loginData{Next: r.URL.Query().Get("next"), Setup: u.setupOpen()}}
	u.render(w, r, http.StatusOK, "login", "", p)
}

// clientAddr is the address login attempts are counted by: the peer's IP
// (no forwarded headers are trusted).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	pw := r.PostFormValue("password")
	next := r.PostFormValue("next")
	fail := func(code int, msg string) {
		p := page{Title: "Log in", CSRF: u.preToken(w, r), Error: msg, Data: loginData{Name: name, Next: next, Setup: u.setupOpen()}}
		u.render(w, r, code, "login", "", p)
	}
	if !checkPre(r) {
		fail(http.StatusForbidden, "The form's CSRF token is missing or wrong: try again.")
		return
	}
	keys := []string{"addr:" + clientAddr(r), "user:" + name}
	if wait := u.limiter.blocked(keys...); wait > 0 {
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed logins: try again in %s.", wait.Round(time.Second)))
		return
	}
	user, err := u.cfg.Accounts.GetUser(r.Context(), name)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalid) {
		u.log.Error("ui: login", "err", err)
		fail(http.StatusInternalServerError, "Could not check the login.")
		return
	}
	hash := user.PasswordHash
	if err != nil {
		hash = dummyHash() // same work for unknown users: no timing oracle
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) != nil || err != nil {
		u.limiter.fail(keys...)
		u.log.Info("ui: failed login", "user", name, "addr", clientAddr(r))
		fail(http.StatusUnauthorized, "Wrong user name or password.")
		return
	}
	u.limiter.reset("user:" + name)
	if err := u.startSession(w, r, name); err != nil {
		u.log.Error("ui: login", "err", err)
		fail(http.StatusInternalServerError, "Could not start a session.")
		return
	}
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

// dummyHash is compared against when a user does not exist.
var dummyHash = sync.OnceValue(func() string {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user, no such password"), bcrypt.DefaultCost)
	return string(h)
})

// startSession stores a new session for user and sets its cookie. Expired
// sessions of anybody are removed on the way.
func (u *UI) startSession(w http.ResponseWriter, r *http.Request, user string) error {
	now := u.cfg.Now().UTC()
	if _, err := u.cfg.Accounts.DeleteExpiredSessions(r.Context(), now); err != nil {
		u.log.Warn("ui: remove expired sessions", "err", err)
	}
	secret := randomToken(32)
	s := store.Session{ID: hashSecret(secret), User: user, CSRF: randomToken(32), CreatedAt: now, ExpiresAt: now.Add(u.cfg.SessionTTL)}
	if err := u.cfg.Accounts.CreateSession(r.Context(), s); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: secret, Path: "/",
		Expires: s.ExpiresAt, MaxAge: int(u.cfg.SessionTTL / time.Second),
		HttpOnly: true, Secure: u.secure(r), SameSite: http.SameSiteLaxMode,
	})
	return nil
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := u.cfg.Accounts.DeleteSession(r.Context(), s.ID); err != nil {
		u.log.Error("ui: logout", "err", err)
		u.errorPage(w, r, s, http.StatusInternalServerError, "Could not end the session.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: u.secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

// setupOpen reports whether the one-time setup token is still unused.
func (u *UI) setupOpen() bool {
	u.setupMu.Lock()
	defer u.setupMu.Unlock()
	return u.setup != ""
}

type setupData struct{ Token, Name string }

func (u *UI) setupPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if !u.checkSetup(tok) {
		u.errorPage(w, r, nil, http.StatusForbidden, "This setup link is not valid (any more). Log in, or create a user with `bakery admin create` on the server host.")
		return
	}
	u.render(w, r, http.StatusOK, "setup", "", page{Title: "Create the first user", CSRF: u.preToken(w, r), Data: setupData{Token: tok}})
}

func (u *UI) checkSetup(tok string) bool {
	u.setupMu.Lock()
	defer u.setupMu.Unlock()
	return equalSecret(u.setup, tok)
}

func (u *UI) setupPost(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	name := strings.TrimSpace(r.PostFormValue("name"))
	fail := func(code int, msg string) {
		u.render(w, r, code, "setup", "", page{Title: "Create the first user", CSRF: u.preToken(w, r), Error: msg, Data: setupData{Token: tok, Name: name}})
	}
	if !checkPre(r) {
		fail(http.StatusForbidden, "The form's CSRF token is missing or wrong: try again.")
		return
	}
	if r.PostFormValue("password") != r.PostFormValue("password2") {
		fail(http.StatusBadRequest, "The two passwords differ.")
		return
	}
	u.setupMu.Lock()
	defer u.setupMu.Unlock()
	if !equalSecret(u.setup, tok) {
		u.errorPage(w, r, nil, http.StatusForbidden, "This setup link is not valid (any more).")
		return
	}
	us, err := u.cfg.Accounts.ListUsers(r.Context())
	if err != nil {
		fail(http.StatusInternalServerError, "Could not read the users.")
		return
	}
	if len(us) > 0 {
		u.setup = ""
		u.errorPage(w, r, nil, http.StatusForbidden, "A user exists already: log in.")
		return
	}
	if err := CreateUser(r.Context(), u.cfg.Accounts, name, r.PostFormValue("password"), u.cfg.BcryptCost, u.cfg.Now()); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	u.setup = ""
	if err := u.startSession(w, r, name); err != nil {
		fail(http.StatusInternalServerError, "The user was created, but no session could be started: log in.")
		return
	}
	http.Redirect(w, r, Prefix+"/deployments", http.StatusSeeOther)
}

// limiter counts failed logins per key (an account or an address) in a
// fixed window that starts with the first failure.
type limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	hits map[string]*window
}

type window struct {
	start time.Time
	n     int
}

func newLimiter(max int, d time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: d, now: now, hits: map[string]*window{}}
}

// blocked returns how long the most limited of keys stays blocked (0: not
// blocked).
func (l *limiter) blocked(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range keys {
		w := l.hits[k]
		if w == nil {
			continue
		}
		end := w.start.Add(l.window)
		if !now.Before(end) {
			delete(l.hits, k)
			continue
		}
		if w.n >= l.max && end.Sub(now) > wait {
			wait = end.Sub(now)
		}
	}
	return wait
}

// fail counts a failed attempt for every key.
func (l *limiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.hits) > 100000 { // bound memory under a flood of names
		for k, w := range l.hits {
			if !now.Before(w.start.Add(l.window)) {
				delete(l.hits, k)
			}
		}
	}
	for _, k := range keys {
		w := l.hits[k]
		if w == nil || !now.Before(w.start.Add(l.window)) {
			w = &window{start: now}
			l.hits[k] = w
		}
		w.n++
	}
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.hits, key)
}
