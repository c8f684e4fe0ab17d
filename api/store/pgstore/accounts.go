package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"bakery.dev/bakery/api/store"
)

// Accounts live in the tables users and sessions (migration 0005). Like
// settings, each write is one statement in its own implicit transaction,
// without the store's write lock, and sends no events. The foreign key from
// sessions to users makes "a session of an unknown user" impossible and
// deletes a user's sessions with the user.

var _ store.Accounts = (*Store)(nil)

// CreateUser implements store.Accounts.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := store.CheckUser(u); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users (name, password_hash, created_at) VALUES ($1, $2, $3)`,
		u.Name, u.PasswordHash, u.CreatedAt.UTC())
	if err != nil {
		return fmt.Errorf("pgstore: create user %q: %w", u.Name, mapErr(err))
	}
	return nil
}

// GetUser implements store.Accounts.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	if err := store.CheckUserName(name); err != nil {
		return store.User{}, err
	}
	u := store.User{Name: name}
	err := s.pool.QueryRow(ctx, `SELECT password_hash, created_at FROM users WHERE name = $1`, name).Scan(&u.PasswordHash, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("pgstore: get user %q: %w", name, mapErr(err))
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// ListUsers implements store.Accounts.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, password_hash, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list users: %w", mapErr(err))
	}
	out := []store.User{}
	for rows.Next() {
		var u store.User
		if err := rows.Scan(&u.Name, &u.PasswordHash, &u.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("pgstore: list users: %w", err)
		}
		u.CreatedAt = u.CreatedAt.UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list users: %w", mapErr(err))
	}
	return out, nil
}

// SetPassword implements store.Accounts.
func (s *Store) SetPassword(ctx context.Context, name, hash string) error {
	if err := store.CheckUser(store.User{Name: name, PasswordHash: hash}); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE name = $1`, name, hash)
	if err != nil {
		return fmt.Errorf("pgstore: set password of %q: %w", name, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// DeleteUser implements store.Accounts.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := store.CheckUserName(name); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("pgstore: delete user %q: %w", name, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// CreateSession implements store.Accounts.
func (s *Store) CreateSession(ctx context.Context, x store.Session) error {
	if err := store.CheckSession(x); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (id, user_name, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		x.ID, x.User, x.CSRF, x.CreatedAt.UTC(), x.ExpiresAt.UTC())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return fmt.Errorf("%w: session for unknown user %q", store.ErrInvalid, x.User)
	}
	if err != nil {
		return fmt.Errorf("pgstore: create session: %w", mapErr(err))
	}
	return nil
}

// GetSession implements store.Accounts.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	x := store.Session{ID: id}
	err := s.pool.QueryRow(ctx, `SELECT user_name, csrf, created_at, expires_at FROM sessions WHERE id = $1`, id).
		Scan(&x.User, &x.CSRF, &x.CreatedAt, &x.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Session{}, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("pgstore: get session: %w", mapErr(err))
	}
	x.CreatedAt, x.ExpiresAt = x.CreatedAt.UTC(), x.ExpiresAt.UTC()
	return x, nil
}

// DeleteSession implements store.Accounts.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("pgstore: delete session: %w", mapErr(err))
	}
	return nil
}

// DeleteExpiredSessions implements store.Accounts.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, now.UTC())
	if err != nil {
		return 0, fmt.Errorf("pgstore: delete expired sessions: %w", mapErr(err))
	}
	return int(tag.RowsAffected()), nil
}
