package ui

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/store"
)

// Cookie names.
const (
	// SessionCookie carries the session's secret.
	SessionCookie = auth.SessionCookie
	// preCookie carries the CSRF token of the login and setup forms,
	// which are sent before there is a session (double-submit).
	preCookie = "bakery_pre"
	// CSRFField is the form field, and CSRFHeader the header (htmx), that
	// carries the session's CSRF token.
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
)

// session is a logged-in browser.
type session = store.Session

// secure reports whether cookies set in answer to r get Secure: when r
// came over TLS, or the server is known to be reached over https.
func (u *UI) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(u.cfg.PublicURL, "https://")
}

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
			if !auth.EqualSecret(s.CSRF, tok) {
				u.errorPage(w, r, s, http.StatusForbidden, "The form's CSRF token is missing or wrong: reload the page and try again.")
				return
			}
		}
		h(w, r.WithContext(auth.WithCaller(r.Context(), auth.Caller{User: s.User})), s)
	})
}

// session returns the request's valid session or ErrNotFound.
func (u *UI) session(r *http.Request) (*session, error) {
	s, err := u.auth.RequestSession(r)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// preToken returns the pre-session CSRF token of r's cookie, setting a new
// cookie when there is none.
func (u *UI) preToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	tok := auth.RandomToken(24)
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: tok, Path: Prefix + "/", HttpOnly: true, Secure: u.secure(r), SameSite: http.SameSiteStrictMode})
	return tok
}

// checkPre reports whether the form's CSRF token matches the pre-session
// cookie.
func checkPre(r *http.Request) bool {
	c, err := r.Cookie(preCookie)
	return err == nil && auth.EqualSecret(c.Value, r.PostFormValue(CSRFField))
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
	// Cut before anything (the form, the log, the counter) sees it.
	name := auth.CapUserName(strings.TrimSpace(r.PostFormValue("name")))
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
	err := u.auth.Login(r.Context(), name, pw, clientAddr(r))
	var limited *auth.LimitedError
	switch {
	case errors.As(err, &limited):
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed logins: try again in %s.", limited.Wait.Round(time.Second)))
		return
	case errors.Is(err, auth.ErrBadLogin):
		u.log.Info("ui: failed login", "user", name, "addr", clientAddr(r))
		fail(http.StatusUnauthorized, "Wrong user name or password.")
		return
	case err != nil:
		u.log.Error("ui: login", "err", err)
		fail(http.StatusInternalServerError, "Could not check the login.")
		return
	}
	if err := u.startSession(w, r, name); err != nil {
		u.log.Error("ui: login", "err", err)
		fail(http.StatusInternalServerError, "Could not start a session.")
		return
	}
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

// startSession starts a session for user (package auth) and sets its
// cookie.
func (u *UI) startSession(w http.ResponseWriter, r *http.Request, user string) error {
	secret, s, err := u.auth.StartSession(r.Context(), user)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: secret, Path: "/",
		Expires: s.ExpiresAt, MaxAge: int(u.auth.SessionTTL() / time.Second),
		HttpOnly: true, Secure: u.secure(r), SameSite: http.SameSiteLaxMode,
	})
	return nil
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := u.auth.EndSession(r.Context(), s.ID); err != nil {
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
	return auth.EqualSecret(u.setup, tok)
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
	if !auth.EqualSecret(u.setup, tok) {
		u.errorPage(w, r, nil, http.StatusForbidden, "This setup link is not valid (any more).")
		return
	}
	us, err := u.auth.ListUsers(r.Context())
	if err != nil {
		fail(http.StatusInternalServerError, "Could not read the users.")
		return
	}
	if len(us) > 0 {
		u.setup = ""
		u.errorPage(w, r, nil, http.StatusForbidden, "A user exists already: log in.")
		return
	}
	if _, err := u.auth.CreateUser(r.Context(), name, r.PostFormValue("password")); err != nil {
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
