package auth

import (
	"errors"
	"log/slog"
	"time"

	"golang.org/x/crypto/bcrypt"

	"bakery.dev/bakery/api/store"
)

// Defaults of Config.
const (
	DefaultSessionTTL    = 12 * time.Hour
	DefaultLoginFailures = 5
	DefaultLoginWindow   = 15 * time.Minute
)

// Errors of this package; callers classify with errors.Is.
var (
	// ErrNoToken means a request carries no bearer token.
	ErrNoToken = errors.New("missing bearer token: send Authorization: Bearer <token>")
	// ErrInvalidToken means a request's bearer token is not a stored one.
	ErrInvalidToken = errors.New("invalid token")
	// ErrNoAccounts means the store keeps no users (Config.Accounts is nil).
	ErrNoAccounts = errors.New("this server keeps no user accounts")
	// ErrBadLogin means a wrong user name or password.
	ErrBadLogin = errors.New("wrong user name or password")
)

// Config configures an Auth.
type Config struct {
	// Tokens keeps the API tokens. Required.
	Tokens store.Tokens
	// Accounts keeps users and sessions (nil: no users, no sessions;
	// their methods return ErrNoAccounts).
	Accounts store.Accounts
	// SessionTTL is how long a login lasts (default DefaultSessionTTL).
	SessionTTL time.Duration
	// LoginFailures failed logins within LoginWindow, for one account or
	// from one address, block further attempts until the window has
	// passed (defaults DefaultLoginFailures, DefaultLoginWindow).
	LoginFailures int
	LoginWindow   time.Duration
	// Attempts counts login attempts (nil: in this process, a Limiter).
	// A PostgreSQL store counts them for every server sharing it.
	Attempts store.Attempts
	// BcryptCost is the cost of new password hashes (default
	// bcrypt.DefaultCost; tests use bcrypt.MinCost).
	BcryptCost int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives what is worth knowing but not failing for (default
	// slog.Default()).
	Logger *slog.Logger
}

// Auth authenticates API tokens and web UI logins and sessions, and
// manages tokens and users. It is safe for concurrent use.
type Auth struct {
	cfg      Config
	log      *slog.Logger
	attempts store.Attempts
}

// New returns an Auth for cfg; zero fields get their defaults.
func New(cfg Config) (*Auth, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("auth: Config.Tokens is required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.LoginFailures <= 0 {
		cfg.LoginFailures = DefaultLoginFailures
	}
	if cfg.LoginWindow <= 0 {
		cfg.LoginWindow = DefaultLoginWindow
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Auth{cfg: cfg, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.attempts = cfg.Attempts
	if a.attempts == nil {
		a.attempts = NewLimiter()
	}
	return a, nil
}

// SessionTTL is how long a session lasts.
func (a *Auth) SessionTTL() time.Duration { return a.cfg.SessionTTL }

// Now is the clock Auth uses.
func (a *Auth) Now() time.Time { return a.cfg.Now() }

// HasAccounts reports whether users and sessions are kept.
func (a *Auth) HasAccounts() bool { return a.cfg.Accounts != nil }

func (a *Auth) accounts() (store.Accounts, error) {
	if a.cfg.Accounts == nil {
		return nil, ErrNoAccounts
	}
	return a.cfg.Accounts, nil
}

// stamp is a creation time as stored: UTC, whole seconds.
func (a *Auth) stamp() time.Time { return a.cfg.Now().UTC().Truncate(time.Second) }

// nowStamp is stamp for the wall clock.
func nowStamp() time.Time { return time.Now().UTC().Truncate(time.Second) }
