package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/github"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
)

// Config configures a Server.
type Config struct {
	// Store keeps the objects and API tokens. Required.
	Store store.Store
	// Logger receives the access log and errors (default slog.Default()).
	Logger *slog.Logger
	// MaxBodyBytes limits request bodies (default DefaultMaxBodyBytes, 4 MiB).
	MaxBodyBytes int64
	// Version, Commit and StoreKind ("file" or "postgres") are reported by
	// /api/v1/version.
	Version, Commit, StoreKind string
	// Loop is the control loop, for node bootstrap and verification,
	// deployment actions, pushes, source syncs and runtime logs (nil:
	// those routes answer 503).
	Loop Loop
	// PublicURL is the base URL nodes and users reach this server at, used
	// in bootstrap commands (default: the request's scheme and Host).
	PublicURL string
	// Stream tunes the rollout log stream (zero: the defaults).
	Stream StreamConfig
	// Auth is the policy of web UI logins and sessions (session lifetime,
	// login limits, hash cost, clock; zero: package auth's defaults). New
	// fills in Tokens and Logger, and Accounts from Store when unset.
	Auth auth.Config
	// UI, when set, builds the web UI that the server mounts under
	// api.UIPrefix. New calls it once with the server's in-process API
	// (requests that carry the logged-in user as auth.Caller, served
	// without a bearer token) and the server's auth. cmd/bakery passes a
	// package api/ui's Config.Mount: the server does not import the
	// UI, the UI reaches the server only through that handler. Nil: no UI.
	UI func(inProcessAPI http.Handler, a *auth.Auth) (http.Handler, error)
	// Keyring seals Secrets' values before they are stored, and webhook
	// secrets and OAuth tokens in the store's settings (nil: Secrets with
	// values are refused, webhook secrets cannot be kept and webhooks
	// answer 401).
	Keyring *sealed.Keyring
	// MaxWebhookBytes limits webhook bodies (default DefaultMaxWebhookBytes).
	MaxWebhookBytes int64
	// GitHub configures the GitHub integration (nil: its routes answer 503).
	GitHub *github.Client
	// ServerID names this control plane in /api/v1/leases.
	ServerID string
	// Cluster reports the control planes sharing the store and what
	// they hold (nil: this server alone, holding nothing visible).
	Cluster Cluster
	// AllowLocalNodes lets API users create and change Nodes with
	// spec.local, whose commands run on this server's host as its user
	// (bakery server --allow-local-nodes). Off: such a write is refused
	// with 403 naming the flag.
	AllowLocalNodes bool
}

// Server is Bakery's HTTP API. Its Handler is safe for concurrent use.
type Server struct {
	store   store.Store
	log     *slog.Logger
	maxBody int64
	cfg     Config
	router  *mux.Router
	handler http.Handler
	ui      http.Handler
	// auth checks tokens and sessions and manages tokens and users.
	auth *auth.Auth
	// deliveries remembers webhook delivery ids (replays are refused).
	deliveries deliveryLog
	// oauth holds pending GitHub sign-ins.
	oauth oauthStates
}

// readyTimeout bounds the store Ping behind /readyz.
const readyTimeout = 2 * time.Second

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is required")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, errors.New("server: Config.MaxBodyBytes must not be negative")
	}
	s := &Server{store: cfg.Store, log: cfg.Logger, maxBody: cfg.MaxBodyBytes, cfg: cfg}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	a, err := auth.New(authConfig(cfg, s.log))
	if err != nil {
		return nil, err
	}
	s.auth = a
	if cfg.UI != nil {
		u, err := cfg.UI(http.HandlerFunc(s.serveForUI), s.auth)
		if err != nil {
			return nil, err
		}
		s.ui = u
	}
	s.router = s.routes()
	s.handler = s.accessLog(s.authenticate(s.router))
	return s, nil
}

// Handler returns the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s.handler }

// resourcePattern matches the {resource} path segment of docs/api.md.
const resourcePattern = "{resource:nodes|deployments|manifestsources|secrets}"

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.Handle("/healthz", http.HandlerFunc(s.healthz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", http.HandlerFunc(s.readyz)).Methods(http.MethodGet, http.MethodHead)

	// No subrouter: gorilla/mux answers 404 instead of 405 for a method
	// mismatch inside one.
	const v1 = "/api/v1"
	r.Handle(v1+"/version", s.wrap(http.StatusOK, s.version)).Methods(http.MethodGet)
	r.Handle(v1+"/apply", s.wrap(http.StatusOK, s.apply)).Methods(http.MethodPost)
	r.Handle(v1+"/reencrypt", s.wrap(http.StatusOK, s.reencrypt)).Methods(http.MethodPost)
	r.Handle(v1+"/"+resourcePattern, s.wrap(http.StatusOK, s.list)).Methods(http.MethodGet)
	r.Handle(v1+"/"+resourcePattern, s.wrap(http.StatusCreated, s.create)).Methods(http.MethodPost)
	r.Handle(v1+"/"+resourcePattern+"/{name}", s.wrap(http.StatusOK, s.get)).Methods(http.MethodGet)
	r.Handle(v1+"/"+resourcePattern+"/{name}", s.wrap(http.StatusOK, s.replace)).Methods(http.MethodPut)
	r.Handle(v1+"/"+resourcePattern+"/{name}", s.wrap(http.StatusOK, s.remove)).Methods(http.MethodDelete)
	r.Handle(v1+"/"+resourcePattern+"/{name}/status", s.wrap(http.StatusOK, s.status)).Methods(http.MethodGet)
	r.Handle(v1+"/nodes/{name}/bootstrap", s.wrap(http.StatusOK, s.bootstrap)).Methods(http.MethodGet)
	r.Handle(v1+"/nodes/{name}/verify", s.wrap(http.StatusOK, s.verify)).Methods(http.MethodPost)
	r.Handle(v1+"/deployments/{name}/actions/{action:deploy|redeploy|restart|rollback|resume|maintenance}", s.wrap(http.StatusAccepted, s.action)).Methods(http.MethodPost)
	r.Handle(v1+"/deployments/{name}/rollouts", s.wrap(http.StatusOK, s.rollouts)).Methods(http.MethodGet)
	r.Handle(v1+"/deployments/{name}/metrics", s.wrap(http.StatusOK, s.metrics)).Methods(http.MethodGet)
	r.Handle(v1+"/deployments/{name}/logs", http.HandlerFunc(s.runtimeLogs)).Methods(http.MethodGet)
	r.Handle(v1+"/deployments/{name}/exec", http.HandlerFunc(s.exec)).Methods(http.MethodPost)
	r.Handle(v1+"/events", s.wrap(http.StatusOK, s.listEvents)).Methods(http.MethodGet)
	r.Handle(v1+"/leases", s.wrap(http.StatusOK, s.leases)).Methods(http.MethodGet)
	r.Handle(v1+"/rollouts/{id}", s.wrap(http.StatusOK, s.rollout)).Methods(http.MethodGet)
	r.Handle(v1+"/rollouts/{id}/logs", s.wrap(http.StatusOK, s.rolloutLogs)).Methods(http.MethodGet)
	r.Handle(v1+"/rollouts/{id}/logs/stream", http.HandlerFunc(s.logStream)).Methods(http.MethodGet)
	r.Handle(GitHubWebhookPath, s.wrap(http.StatusOK, s.githubWebhook)).Methods(http.MethodPost)
	r.Handle(GenericWebhookPath, s.wrap(http.StatusOK, s.genericWebhook)).Methods(http.MethodPost)
	r.Handle(v1+"/webhooks/secrets", s.wrap(http.StatusOK, s.getWebhookSecret)).Methods(http.MethodGet)
	r.Handle(v1+"/webhooks/secrets", s.wrap(http.StatusCreated, s.createWebhookSecret)).Methods(http.MethodPost)
	r.Handle(v1+"/manifestsources/{name}/sync", s.wrap(http.StatusAccepted, s.syncSource)).Methods(http.MethodPost)
	s.accountRoutes(r)
	s.githubRoutes(r)
	r.Handle(InstallerPath, http.HandlerFunc(s.installer)).Methods(http.MethodGet, http.MethodHead)
	if s.ui != nil {
		// Outside /api/: the UI authenticates by session cookie (+ CSRF
		// token on every change); its SSE routes pass the API's streams
		// through after that check.
		r.PathPrefix(api.UIPrefix + "/").Handler(s.ui)
		toUI := http.RedirectHandler(api.UIPrefix+"/", http.StatusSeeOther)
		r.Handle("/", toUI).Methods(http.MethodGet, http.MethodHead)
		r.Handle(api.UIPrefix, toUI).Methods(http.MethodGet, http.MethodHead)
	}

	r.NotFoundHandler = s.wrap(0, func(w http.ResponseWriter, r *http.Request) (any, error) {
		return nil, errorf(http.StatusNotFound, "no route %s %s", r.Method, r.URL.Path)
	})
	r.MethodNotAllowedHandler = s.wrap(0, func(w http.ResponseWriter, r *http.Request) (any, error) {
		allowed := s.allowedMethods(r)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return nil, errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", "))
	})
	return r
}

// serveForUI serves an API request the UI makes in-process for its
// logged-in user (the auth.Caller's User in the request's context): the
// UI checked the session already, so no bearer token is needed; the
// caller is recorded as "user:<name>".
func (s *Server) serveForUI(w http.ResponseWriter, r *http.Request) {
	if c := auth.CallerOf(r.Context()); c.User == "" || c.Token != "" {
		s.writeError(w, r, errorf(http.StatusUnauthorized, "no UI user"))
		return
	}
	s.router.ServeHTTP(w, r)
}

// allowedMethods lists the methods that some route serves for r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return out
}

// healthz says the process is alive.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeText(w, http.StatusOK, "ok")
}

// readyz says whether the store answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("not ready: store ping failed", "err", err)
		writeText(w, http.StatusServiceUnavailable, "store unavailable")
		return
	}
	writeText(w, http.StatusOK, "ok")
}

func writeText(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write([]byte(s + "\n"))
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) (any, error) {
	return api.VersionInfo{Version: s.cfg.Version, Commit: s.cfg.Commit, Store: s.cfg.StoreKind}, nil
}
