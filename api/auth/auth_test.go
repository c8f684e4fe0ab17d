package auth_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newAuth(t *testing.T) (*auth.Auth, *filestore.Store, *clock) {
	t.Helper()
	st, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Now()}
	a, err := auth.New(auth.Config{Tokens: st, Accounts: st, BcryptCost: bcrypt.MinCost, Now: clk.Now,
		SessionTTL: time.Hour, LoginFailures: 2, LoginWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return a, st, clk
}

func TestCheckBearer(t *testing.T) {
	a, _, _ := newAuth(t)
	secret, tok, err := a.CreateToken(t.Context(), "ci")
	if err != nil || tok.Hash != auth.HashToken(secret) {
		t.Fatalf("CreateToken: %+v %v", tok, err)
	}
	for _, tc := range []struct {
		header string
		want   error
	}{
		{"", auth.ErrNoToken},
		{"Bearer ", auth.ErrNoToken},
		{"Basic " + secret, auth.ErrNoToken},
		{secret, auth.ErrNoToken},
		{"Bearer bkr_wrong", auth.ErrInvalidToken},
		{"Bearer " + secret, nil},
		{"bearer " + secret, nil},
	} {
		r, _ := http.NewRequestWithContext(t.Context(), "GET", "/api/v1/nodes", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		name, err := a.CheckBearer(r)
		if !errors.Is(err, tc.want) || (err == nil && name != "ci") {
			t.Errorf("%q: %q, %v; want %v", tc.header, name, err, tc.want)
		}
	}
	if _, err := a.RevokeToken(t.Context(), "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CheckToken(t.Context(), secret); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := a.RevokeToken(t.Context(), "ci"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	if _, _, err := a.CreateToken(t.Context(), "Bad Name"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad token name: %v", err)
	}
}

func TestLoginAndSessions(t *testing.T) {
	a, _, clk := newAuth(t)
	ctx := t.Context()
	if _, err := a.CreateUser(ctx, "alice", "short"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("short password: %v", err)
	}
	if _, err := a.CreateUser(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	if err := a.Login(ctx, "alice", "correct horse battery", "10.0.0.1"); err != nil {
		t.Fatalf("login: %v", err)
	}
	// Two failures block the account, from any address, for the window.
	for range 2 {
		if err := a.Login(ctx, "alice", "wrong", "10.0.0.2"); !errors.Is(err, auth.ErrBadLogin) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	var limited *auth.LimitedError
	if err := a.Login(ctx, "alice", "correct horse battery", "10.0.0.3"); !errors.As(err, &limited) || limited.Wait <= 0 {
		t.Fatalf("blocked login: %v", err)
	}
	clk.Add(time.Minute)
	if err := a.Login(ctx, "alice", "correct horse battery", "10.0.0.3"); err != nil {
		t.Fatalf("login after the window: %v", err)
	}
	if err := a.Login(ctx, "nobody", "correct horse battery", "10.0.0.4"); !errors.Is(err, auth.ErrBadLogin) {
		t.Fatalf("unknown user: %v", err)
	}

	secret, s, err := a.StartSession(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if s.ID == secret || s.ID != auth.HashToken(secret) || s.CSRF == "" {
		t.Fatalf("session %+v keeps its secret", s)
	}
	if got, err := a.Session(ctx, secret); err != nil || got.User != "alice" {
		t.Fatalf("session: %+v %v", got, err)
	}
	if _, err := a.Session(ctx, "forged"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("forged session: %v", err)
	}
	clk.Add(time.Hour)
	if _, err := a.Session(ctx, secret); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	secret, s, _ = a.StartSession(ctx, "alice")
	if err := a.EndSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Session(ctx, secret); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ended session: %v", err)
	}
	if _, err := a.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if us, _ := a.ListUsers(ctx); len(us) != 0 {
		t.Fatalf("users after the delete: %+v", us)
	}
}

func TestNoAccounts(t *testing.T) {
	st, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := auth.New(auth.Config{Tokens: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ListUsers(t.Context()); !errors.Is(err, auth.ErrNoAccounts) {
		t.Fatalf("ListUsers without accounts: %v", err)
	}
	if _, err := a.Session(t.Context(), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Session without accounts: %v", err)
	}
}

func TestCallerName(t *testing.T) {
	ctx := t.Context()
	if n := auth.CallerOf(ctx).Name(); n != "" {
		t.Fatalf("no caller: %q", n)
	}
	if n := auth.CallerOf(auth.WithCaller(ctx, auth.Caller{Token: "ci"})).Name(); n != "ci" {
		t.Fatalf("token caller: %q", n)
	}
	if n := auth.CallerOf(auth.WithCaller(ctx, auth.Caller{User: "alice"})).Name(); n != "user:alice" {
		t.Fatalf("UI caller: %q", n)
	}
}

// TestLimiter: the in-process counter passes the store.Attempts suite.
func TestLimiter(t *testing.T) {
	storetest.RunAttempts(t, func(t *testing.T) (store.Attempts, store.Attempts) {
		l := auth.NewLimiter()
		return l, l
	})
}
