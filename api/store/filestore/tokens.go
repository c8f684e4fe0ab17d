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

	"bakery.dev/bakery/api/store"
)

func (s *Store) tokensPath() string { return filepath.Join(s.dir, tokensFile) }

func (s *Store) loadTokens() error {
	data, err := os.ReadFile(s.tokensPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	var ts []store.Token
	if err := json.Unmarshal(data, &ts); err != nil {
		return fmt.Errorf("filestore: %w: %s: %v", store.ErrCorrupt, s.tokensPath(), err)
	}
	for _, t := range ts {
		s.tokens[t.Name] = t
	}
	return nil
}

func sortedTokens(m map[string]store.Token) []store.Token {
	ts := make([]store.Token, 0, len(m))
	for _, t := range m {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts
}

// writeTokens replaces the token file with m, then the in-memory tokens.
// The caller holds sem.
func (s *Store) writeTokens(m map[string]store.Token) error {
	data, err := json.MarshalIndent(sortedTokens(m), "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(s.tokensPath(), append(data, '\n'), statePerm); err != nil {
		return fmt.Errorf("filestore: write tokens: %w", err)
	}
	s.mu.Lock()
	s.tokens = m
	s.mu.Unlock()
	return nil
}

// CreateToken implements store.Tokens.
func (s *Store) CreateToken(ctx context.Context, t store.Token) error {
	if t.Name == "" || t.Hash == "" {
		return fmt.Errorf("%w: a token needs a name and a hash", store.ErrInvalid)
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	if _, ok := s.tokens[t.Name]; ok {
		return fmt.Errorf("token %q: %w", t.Name, store.ErrAlreadyExists)
	}
	for _, o := range s.tokens {
		if o.Hash == t.Hash {
			return fmt.Errorf("%w: token %q has the same hash", store.ErrAlreadyExists, o.Name)
		}
	}
	m := make(map[string]store.Token, len(s.tokens)+1)
	for k, v := range s.tokens {
		m[k] = v
	}
	m[t.Name] = t
	return s.writeTokens(m)
}

// TokenByHash implements store.Tokens.
func (s *Store) TokenByHash(ctx context.Context, h string) (store.Token, error) {
	if s.closed.Load() {
		return store.Token{}, errClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.tokens {
		if t.Hash == h {
			return t, nil
		}
	}
	return store.Token{}, fmt.Errorf("token: %w", store.ErrNotFound)
}

// ListTokens implements store.Tokens.
func (s *Store) ListTokens(ctx context.Context) ([]store.Token, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedTokens(s.tokens), nil
}

// DeleteToken implements store.Tokens; ErrNotFound if there is no such token.
func (s *Store) DeleteToken(ctx context.Context, name string) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	if _, ok := s.tokens[name]; !ok {
		return fmt.Errorf("token %q: %w", name, store.ErrNotFound)
	}
	m := make(map[string]store.Token, len(s.tokens))
	for k, v := range s.tokens {
		if k != name {
			m[k] = v
		}
	}
	return s.writeTokens(m)
}
