package ui

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// maxFormBytes bounds a form: the largest is the editor's YAML, which the
// API limits to 4 MiB (DefaultMaxBodyBytes) anyway.
const maxFormBytes = 5 << 20

// Prefix is where the UI is mounted (api.UIPrefix).
const Prefix = api.UIPrefix

// Config configures the UI.
type Config struct {
	// Auth checks logins and sessions (package auth). Required: the
	// server's, which package server hands to the function that builds
	// the UI (server.Config.UI), with API.
	Auth *auth.Auth
	// API serves the HTTP API's routes without bearer-token checks: the UI
	// calls it in-process after it checked the session, with the user in
	// the request's context (auth.WithCaller). Required: package server
	// hands it to the function that builds the UI (server.Config.UI).
	API http.Handler
	// Logger receives errors (default slog.Default()).
	Logger *slog.Logger
	// SetupToken, when set and no user exists, lets whoever presents it at
	// /ui/setup create the first user, once. cmd/bakery prints the link.
	SetupToken string
	// Notify describes the notification targets (shown on the settings
	// page, secrets already removed).
	Notify []string
	// PublicURL is the base URL users reach the server at: when it is
	// https, cookies are marked Secure even on plain-HTTP requests (a
	// server behind a TLS-terminating proxy). Requests over TLS always get
	// Secure cookies.
	PublicURL string
	// GitHub says whether the server has the GitHub integration: the
	// editor then offers GitHub sign-in and the user's repositories and
	// branches.
	GitHub bool
	// Now is the UI's clock (default time.Now); sessions follow the
	// clock of Auth.
	Now func() time.Time
}

// Mount returns the UI of c around the server's in-process API and auth:
// the function server.Config.UI wants.
func (c Config) Mount(api http.Handler, a *auth.Auth) (http.Handler, error) {
	c.API, c.Auth = api, a
	u, err := New(c)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UI is the web UI's http.Handler.
type UI struct {
	cfg    Config
	log    *slog.Logger
	pages  map[string]*template.Template
	router *mux.Router
	auth   *auth.Auth
	static http.Handler

	setupMu sync.Mutex
	setup   string // the setup token; "" once used
}

// New returns the UI for cfg.
func New(cfg Config) (*UI, error) {
	if cfg.Auth == nil || cfg.API == nil {
		return nil, errors.New("ui: Config.Auth and API are required")
	}
	if !cfg.Auth.HasAccounts() {
		return nil, errors.New("ui: the store keeps no user accounts")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	u := &UI{cfg: cfg, log: cfg.Logger, auth: cfg.Auth, setup: cfg.SetupToken}
	if u.log == nil {
		u.log = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	u.pages = pages
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	u.static = http.StripPrefix(Prefix+"/static/", http.FileServer(http.FS(sub)))
	u.router = u.routes()
	return u, nil
}

// ServeHTTP implements http.Handler: every answer carries the security
// headers.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	u.router.ServeHTTP(w, r)
}

func (u *UI) routes() *mux.Router {
	r := mux.NewRouter()
	p := Prefix
	get, post := http.MethodGet, http.MethodPost
	r.PathPrefix(p+"/static/").Handler(http.HandlerFunc(u.serveStatic)).Methods(get, http.MethodHead)
	r.HandleFunc(p+"/login", u.loginPage).Methods(get)
	r.HandleFunc(p+"/login", u.login).Methods(post)
	r.HandleFunc(p+"/setup", u.setupPage).Methods(get)
	r.HandleFunc(p+"/setup", u.setupPost).Methods(post)
	r.Handle(p+"/logout", u.authed(u.logout)).Methods(post)

	r.Handle(p+"/", u.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
		http.Redirect(w, r, p+"/deployments", http.StatusSeeOther)
	})).Methods(get)
	r.Handle(p+"/nodes", u.authed(u.nodesPage)).Methods(get)
	r.Handle(p+"/nodes/new", u.authed(u.nodeNewPage)).Methods(get)
	r.Handle(p+"/nodes", u.authed(u.nodeCreate)).Methods(post)
	r.Handle(p+"/nodes/{name}", u.authed(u.nodePage)).Methods(get)
	r.Handle(p+"/nodes/{name}", u.authed(u.nodeUpdate)).Methods(post)
	r.Handle(p+"/nodes/{name}/delete", u.authed(u.nodeDelete)).Methods(post)
	r.Handle(p+"/nodes/{name}/verify", u.authed(u.nodeVerify)).Methods(post)

	r.Handle(p+"/deployments", u.authed(u.deploymentsPage)).Methods(get)
	r.Handle(p+"/deployments/{name}", u.authed(u.deploymentPage)).Methods(get)
	r.Handle(p+"/deployments/{name}/status", u.authed(u.deploymentStatus)).Methods(get)
	r.Handle(p+"/deployments/{name}/current-rollout", u.authed(u.currentRollout)).Methods(get)
	r.Handle(p+"/deployments/{name}/actions/{action:deploy|redeploy|restart|rollback|resume}", u.authed(u.deploymentAction)).Methods(post)
	r.Handle(p+"/deployments/{name}/delete", u.authed(u.deploymentDelete)).Methods(post)
	r.Handle(p+"/deployments/{name}/traffic", u.authed(u.deploymentTraffic)).Methods(get)
	r.Handle(p+"/deployments/{name}/logs/stream", u.authed(u.runtimeLogStream)).Methods(get)
	r.Handle(p+"/rollouts/{id}/stream", u.authed(u.rolloutLogStream)).Methods(get)

	r.Handle(p+"/secrets", u.authed(u.secretsPage)).Methods(get)
	r.Handle(p+"/secrets", u.authed(u.secretSet)).Methods(post)
	r.Handle(p+"/secrets/{name}", u.authed(u.secretPage)).Methods(get)
	r.Handle(p+"/secrets/{name}", u.authed(u.secretSet)).Methods(post)
	r.Handle(p+"/secrets/{name}/delete", u.authed(u.secretDelete)).Methods(post)
	r.Handle(p+"/secrets/{name}/keys/{key}/delete", u.authed(u.secretUnset)).Methods(post)

	r.Handle(p+"/editor", u.authed(u.editorPage)).Methods(get)
	r.Handle(p+"/editor", u.authed(u.editorPost)).Methods(post)

	r.Handle(p+"/github/login", u.authed(u.githubLogin)).Methods(get)
	r.Handle(p+"/github/repos", u.authed(u.githubRepos)).Methods(get)
	r.Handle(p+"/github/branches", u.authed(u.githubBranches)).Methods(get)
	r.Handle(p+"/github/hooks", u.authed(u.githubHook)).Methods(post)

	r.Handle(p+"/settings", u.authed(u.settingsPage)).Methods(get)
	r.Handle(p+"/settings/users", u.authed(u.userCreate)).Methods(post)
	r.Handle(p+"/settings/users/{user}/delete", u.authed(u.userDelete)).Methods(post)
	r.Handle(p+"/settings/tokens", u.authed(u.tokenCreate)).Methods(post)
	r.Handle(p+"/settings/tokens/{token}/delete", u.authed(u.tokenDelete)).Methods(post)

	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, nil, http.StatusNotFound, "There is no page "+r.URL.Path+".")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, nil, http.StatusMethodNotAllowed, "Method "+r.Method+" is not allowed here.")
	})
	return r
}

func (u *UI) serveStatic(w http.ResponseWriter, r *http.Request) {
	// The files are part of the binary: a browser may keep them for an
	// hour; a new binary is picked up after that.
	w.Header().Set("Cache-Control", "public, max-age=3600")
	u.static.ServeHTTP(w, r)
}

// funcs are the template functions.
var funcs = template.FuncMap{
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"bytes": api.HumanBytes,
	"join":  strings.Join,
	"list":  func(s ...string) []string { return s },
	"usedPct": func(d *api.DiskUsage) int64 {
		if d == nil || d.FilesystemBytes <= 0 {
			return 0
		}
		return (d.FilesystemBytes - d.FreeBytes) * 100 / d.FilesystemBytes
	},
	"actionLabel": func(a string) string {
		return map[string]string{"deploy": "Deploy now", "redeploy": "Redeploy last commit", "restart": "Restart service", "rollback": "Rollback",
			"resume": "Resume (follow the branch)"}[a]
	},
	"diffLines": diffLines,
	"condClass": func(status, typ string) string {
		switch {
		case typ == "Progressing":
			if status == "True" {
				return "warn"
			}
			return "muted"
		case typ == "Pinned":
			return "warn" // held back on purpose: until resumed
		case typ == "Degraded" || typ == "Stalled":
			if status == "True" {
				return "bad"
			}
			return "muted"
		case status == "True":
			return "good"
		case status == "False":
			return "bad"
		}
		return "muted"
	},
}

// parsePages parses every page template together with the layout.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, fmt.Errorf("ui: %w", err)
		}
		pages[name] = t
	}
	return pages, nil
}

// page is what every page template gets.
type page struct {
	Title   string
	Nav     string
	User    string
	CSRF    string
	Message string // a notice shown at the top
	Error   string // an error shown at the top
	Data    any
}

// WithData returns p with d as its data (for sub-templates).
func (p page) WithData(d any) page {
	p.Data = d
	return p
}

// diffLine is one line of a unified diff with its CSS class.
type diffLine struct{ Class, Text string }

func diffLines(diff string) []diffLine {
	var out []diffLine
	for _, l := range strings.Split(strings.TrimSuffix(diff, "\n"), "\n") {
		c := ""
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			c = "hdr"
		case strings.HasPrefix(l, "+"):
			c = "add"
		case strings.HasPrefix(l, "-"):
			c = "del"
		case strings.HasPrefix(l, "@@"):
			c = "hunk"
		}
		out = append(out, diffLine{c, l})
	}
	return out
}

// render writes page name with code; fragment, when set, renders only that
// template of the page (for htmx swaps).
func (u *UI) render(w http.ResponseWriter, r *http.Request, code int, name, fragment string, p page) {
	t, ok := u.pages[name]
	if !ok {
		u.log.Error("ui: no such page", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if fragment == "" {
		fragment = "layout.html"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, fragment, p); err != nil {
		u.log.Error("ui: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// errorPage answers code with msg in the layout.
func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, s *session, code int, msg string) {
	p := page{Title: http.StatusText(code), Error: msg}
	if s != nil {
		p.User, p.CSRF = s.User, s.CSRF
	}
	u.render(w, r, code, "error", "", p)
}
