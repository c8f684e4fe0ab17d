package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"bakery.dev/bakery/api/store"
)

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// maxPasswordLen is bcrypt's limit.
const maxPasswordLen = 72

// CheckPassword returns an ErrInvalid error unless pw is acceptable as a
// password.
func CheckPassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return &passwordError{fmt.Sprintf("password: must be at least %d characters", MinPasswordLen)}
	case len(pw) > maxPasswordLen:
		return &passwordError{fmt.Sprintf("password: must be at most %d bytes", maxPasswordLen)}
	}
	return nil
}

// passwordError is a password refused by CheckPassword: it is a
// store.ErrInvalid (a bad request), worded for the person who typed it.
type passwordError struct{ msg string }

func (e *passwordError) Error() string        { return e.msg }
func (e *passwordError) Is(target error) bool { return target == store.ErrInvalid }

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

// CreateUser creates user name with password pw in acc, its hash made
// with cost (0: the default), created at now (for `bakery admin create`,
// before any server runs).
func CreateUser(ctx context.Context, acc store.Accounts, name, pw string, cost int, now time.Time) error {
	if err := store.CheckUserName(name); err != nil {
		return err
	}
	h, err := HashPassword(pw, cost)
	if err != nil {
		return err
	}
	return acc.CreateUser(ctx, store.User{Name: name, PasswordHash: h, CreatedAt: now.UTC().Truncate(time.Second)})
}

// NeedsSetup returns a new setup token when acc holds no user yet (the
// web UI lets whoever presents it create the first user), or "" when
// there are users.
func NeedsSetup(ctx context.Context, acc store.Accounts) (string, error) {
	us, err := acc.ListUsers(ctx)
	if err != nil {
		return "", fmt.Errorf("setup: %w", err)
	}
	if len(us) > 0 {
		return "", nil
	}
	return RandomToken(24), nil
}

// CreateUser creates user name with password pw: ErrInvalid for a bad name
// or password, ErrAlreadyExists when the name is taken.
func (a *Auth) CreateUser(ctx context.Context, name, pw string) (store.User, error) {
	acc, err := a.accounts()
	if err != nil {
		return store.User{}, err
	}
	if err := CreateUser(ctx, acc, name, pw, a.cfg.BcryptCost, a.cfg.Now()); err != nil {
		return store.User{}, err
	}
	return acc.GetUser(ctx, name)
}

// ListUsers returns every user sorted by name (with password hashes:
// callers show only names and times).
func (a *Auth) ListUsers(ctx context.Context) ([]store.User, error) {
	acc, err := a.accounts()
	if err != nil {
		return nil, err
	}
	return acc.ListUsers(ctx)
}

// DeleteUser removes user name and ends their sessions; ErrNotFound when
// there is none.
func (a *Auth) DeleteUser(ctx context.Context, name string) (store.User, error) {
	acc, err := a.accounts()
	if err != nil {
		return store.User{}, err
	}
	u, err := acc.GetUser(ctx, name)
	if err != nil {
		return store.User{}, err
	}
	if err := acc.DeleteUser(ctx, name); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// LimitedError is a login refused because of too many failed attempts.
type LimitedError struct {
	// Wait is how long until the next attempt is let through.
	Wait time.Duration
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("too many failed logins: try again in %s", e.Wait.Round(time.Second))
}

// MaxUserNameLen is how much of a user name a login attempt uses: a
// longer name is cut before anything sees it (the attempt counter, the
// log, the store). No stored name is that long (store.CheckUserName).
const MaxUserNameLen = 64

// CapUserName returns name cut to MaxUserNameLen bytes.
func CapUserName(name string) string {
	if len(name) > MaxUserNameLen {
		return name[:MaxUserNameLen]
	}
	return name
}

// Login checks name's password pw for a login attempt from addr (the
// client's address). The attempt is counted against the account and the
// address before the password is compared, atomically (across servers
// when the store keeps attempts): a *LimitedError, without any compare,
// while either has used its LoginFailures attempts in the window;
// ErrBadLogin for a wrong name or password (the attempt stays counted). A
// successful login takes its attempt back from the address and clears the
// account's. name is cut to MaxUserNameLen first. It does not start a
// session: see StartSession.
func (a *Auth) Login(ctx context.Context, name, pw, addr string) error {
	acc, err := a.accounts()
	if err != nil {
		return err
	}
	name = CapUserName(name)
	keys := []string{"addr:" + CapUserName(addr), "user:" + name}
	wait, err := a.attempts.TakeAttempt(ctx, keys, a.cfg.LoginFailures, a.cfg.LoginWindow, a.cfg.Now())
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if wait > 0 {
		return &LimitedError{Wait: wait}
	}
	ok, err := checkPassword(ctx, acc, name, pw)
	if err != nil {
		// Not the client's doing: the attempt does not count.
		a.giveBack(ctx, keys[0], keys[1])
		return err
	}
	if !ok {
		return ErrBadLogin
	}
	a.giveBack(ctx, keys[0])
	if err := a.attempts.ResetAttempts(ctx, keys[1]); err != nil {
		a.log.Warn("login: clearing the account's failed attempts", "user", name, "err", err)
	}
	return nil
}

// checkPassword compares pw with name's password hash, with the same work
// for a user that does not exist.
func checkPassword(ctx context.Context, acc store.Accounts, name, pw string) (bool, error) {
	user, err := acc.GetUser(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalid) {
		return false, fmt.Errorf("login: %w", err)
	}
	hash := user.PasswordHash
	if err != nil {
		hash = dummyHash() // same work for unknown users: no timing oracle
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil && err == nil, nil
}

// giveBack returns one counted attempt for each key.
func (a *Auth) giveBack(ctx context.Context, keys ...string) {
	for _, k := range keys {
		if err := a.attempts.ReturnAttempt(context.WithoutCancel(ctx), k); err != nil {
			a.log.Warn("login: returning an attempt", "key", k, "err", err)
		}
	}
}

// dummyHash is compared against when a user does not exist.
var dummyHash = sync.OnceValue(func() string {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user, no such password"), bcrypt.DefaultCost)
	return string(h)
})
