package store

import (
	"context"
	"fmt"
	"time"
)

// User is a person who logs in to the web UI. Only a password hash is
// stored (bcrypt, made by the UI).
type User struct {
	Name         string    `json:"name"`
	PasswordHash string    `json:"passwordHash"`
	CreatedAt    time.Time `json:"createdAt"`
}

// Session is a logged-in browser. ID is the hash of the secret the cookie
// carries (never the secret itself); CSRF is the token every form of the
// session must send back.
type Session struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Accounts keeps the web UI's users and sessions. Like Settings it is not
// part of Store: a store that keeps accounts implements it besides
// store.Store, and storetest.RunAccounts is its conformance suite. Users
// and sessions are not objects: they are never watched and write no
// events.
type Accounts interface {
	// CreateUser stores u; ErrAlreadyExists if the name is taken,
	// ErrInvalid if the name fails CheckUserName or the hash is empty.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns the user name or ErrNotFound.
	GetUser(ctx context.Context, name string) (User, error)
	// ListUsers returns every user sorted by name.
	ListUsers(ctx context.Context) ([]User, error)
	// SetPassword replaces the password hash of name; ErrNotFound if there
	// is no such user.
	SetPassword(ctx context.Context, name, hash string) error
	// DeleteUser removes name and every session of name; ErrNotFound if
	// there is no such user.
	DeleteUser(ctx context.Context, name string) error
	// CreateSession stores s; ErrInvalid unless s.User exists and ID and
	// CSRF are set; ErrAlreadyExists if the ID is taken.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session with id, or ErrNotFound. It returns
	// expired sessions too: the caller compares ExpiresAt with its clock.
	GetSession(ctx context.Context, id string) (Session, error)
	// DeleteSession removes the session id; deleting a missing session is
	// not an error (logout is idempotent).
	DeleteSession(ctx context.Context, id string) error
	// DeleteExpiredSessions removes every session whose ExpiresAt is not
	// after now and returns how many it removed.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}

// CheckUserName returns an ErrInvalid error unless name is a valid user
// name: the rules of a setting name (a DNS-1123 label of at most 63
// characters).
func CheckUserName(name string) error {
	if err := CheckSettingName(name); err != nil {
		return fmt.Errorf("user name: %w", err)
	}
	return nil
}

// CheckUser returns an ErrInvalid error unless u can be stored.
func CheckUser(u User) error {
	if err := CheckUserName(u.Name); err != nil {
		return err
	}
	if u.PasswordHash == "" {
		return fmt.Errorf("%w: user %s has no password hash", ErrInvalid, u.Name)
	}
	return nil
}

// CheckSession returns an ErrInvalid error unless s names its ID, CSRF
// token and user.
func CheckSession(s Session) error {
	if s.ID == "" || s.CSRF == "" {
		return fmt.Errorf("%w: a session needs an id and a csrf token", ErrInvalid)
	}
	return CheckUserName(s.User)
}
