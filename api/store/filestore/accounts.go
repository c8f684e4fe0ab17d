package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"bakery.dev/bakery/api/store"
)

// Accounts (store.Accounts) live in two files beside tokens.json:
// users.json and sessions.json, each a JSON array, mode 0600. They are
// read from disk on every call (they are small, and a session is checked
// once per UI request) and replaced atomically under the store's lock, so a
// read sees either the old or the new file. They are not objects: not
// watched, no events.

var _ store.Accounts = (*Store)(nil)

const (
	usersFile    = "users.json"
	sessionsFile = "sessions.json"
)

// readJSONFile decodes the array in name (none: an empty one) into a map
// keyed by key.
func readJSONFile[T any](s *Store, name string, key func(T) string) (map[string]T, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	path := filepath.Join(s.dir, name)
	data, err := os.ReadFile(path)
	m := map[string]T{}
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	var vs []T
	if err := json.Unmarshal(data, &vs); err != nil {
		return nil, fmt.Errorf("filestore: %w: %s: %v", store.ErrCorrupt, path, err)
	}
	for _, v := range vs {
		m[key(v)] = v
	}
	return m, nil
}

// writeJSONFile replaces name with the values of m sorted by key. The
// caller holds the store's lock.
func writeJSONFile[T any](s *Store, name string, m map[string]T) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vs := make([]T, 0, len(m))
	for _, k := range keys {
		vs = append(vs, m[k])
	}
	data, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(s.dir, name), append(data, '\n'), statePerm); err != nil {
		return fmt.Errorf("filestore: write %s: %w", name, err)
	}
	return nil
}

func userKey(u store.User) string       { return u.Name }
func sessionKey(x store.Session) string { return x.ID }

func (s *Store) users() (map[string]store.User, error) {
	return readJSONFile(s, usersFile, userKey)
}

func (s *Store) sessions() (map[string]store.Session, error) {
	return readJSONFile(s, sessionsFile, sessionKey)
}

// CreateUser implements store.Accounts.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := store.CheckUser(u); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	m, err := s.users()
	if err != nil {
		return err
	}
	if _, ok := m[u.Name]; ok {
		return fmt.Errorf("user %q: %w", u.Name, store.ErrAlreadyExists)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	m[u.Name] = u
	return writeJSONFile(s, usersFile, m)
}

// GetUser implements store.Accounts.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	if err := store.CheckUserName(name); err != nil {
		return store.User{}, err
	}
	m, err := s.users()
	if err != nil {
		return store.User{}, err
	}
	u, ok := m[name]
	if !ok {
		return store.User{}, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	return u, nil
}

// ListUsers implements store.Accounts.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	m, err := s.users()
	if err != nil {
		return nil, err
	}
	out := make([]store.User, 0, len(m))
	for _, u := range m {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SetPassword implements store.Accounts.
func (s *Store) SetPassword(ctx context.Context, name, hash string) error {
	if err := store.CheckUser(store.User{Name: name, PasswordHash: hash}); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	m, err := s.users()
	if err != nil {
		return err
	}
	u, ok := m[name]
	if !ok {
		return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	u.PasswordHash = hash
	m[name] = u
	return writeJSONFile(s, usersFile, m)
}

// DeleteUser implements store.Accounts. The sessions go first: a crash in
// between leaves a user without sessions, never a session without a user.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := store.CheckUserName(name); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	m, err := s.users()
	if err != nil {
		return err
	}
	if _, ok := m[name]; !ok {
		return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	ss, err := s.sessions()
	if err != nil {
		return err
	}
	n := len(ss)
	for id, x := range ss {
		if x.User == name {
			delete(ss, id)
		}
	}
	if len(ss) != n {
		if err := writeJSONFile(s, sessionsFile, ss); err != nil {
			return err
		}
	}
	delete(m, name)
	return writeJSONFile(s, usersFile, m)
}

// CreateSession implements store.Accounts.
func (s *Store) CreateSession(ctx context.Context, x store.Session) error {
	if err := store.CheckSession(x); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	us, err := s.users()
	if err != nil {
		return err
	}
	if _, ok := us[x.User]; !ok {
		return fmt.Errorf("%w: session for unknown user %q", store.ErrInvalid, x.User)
	}
	m, err := s.sessions()
	if err != nil {
		return err
	}
	if _, ok := m[x.ID]; ok {
		return fmt.Errorf("session: %w", store.ErrAlreadyExists)
	}
	x.CreatedAt, x.ExpiresAt = x.CreatedAt.UTC(), x.ExpiresAt.UTC()
	m[x.ID] = x
	return writeJSONFile(s, sessionsFile, m)
}

// GetSession implements store.Accounts.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	m, err := s.sessions()
	if err != nil {
		return store.Session{}, err
	}
	x, ok := m[id]
	if !ok {
		return store.Session{}, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	return x, nil
}

// DeleteSession implements store.Accounts.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.deleteSessions(ctx, func(x store.Session) bool { return x.ID == id }, nil)
}

// DeleteExpiredSessions implements store.Accounts.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := s.deleteSessions(ctx, func(x store.Session) bool { return !x.ExpiresAt.After(now) }, &n)
	return n, err
}

func (s *Store) deleteSessions(ctx context.Context, match func(store.Session) bool, count *int) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	m, err := s.sessions()
	if err != nil {
		return err
	}
	n := 0
	for id, x := range m {
		if match(x) {
			delete(m, id)
			n++
		}
	}
	if count != nil {
		*count = n
	}
	if n == 0 {
		return nil
	}
	return writeJSONFile(s, sessionsFile, m)
}
