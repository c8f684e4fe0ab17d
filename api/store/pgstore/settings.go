package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api/store"
)

// Settings live in their own table, settings(name, value bytea,
// updated_at). Like rollouts they are not objects: each write is one
// statement in its own implicit transaction, without the write lock, and
// sends no events. CreateSetting is an INSERT … ON CONFLICT DO NOTHING:
// of concurrent creators, also on other servers, exactly one inserts the
// row; the others find it taken (store.ErrAlreadyExists).

var _ store.Settings = (*Store)(nil)

// GetSetting implements store.Settings.
func (s *Store) GetSetting(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckSettingName(name); err != nil {
		return nil, err
	}
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("setting %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: get setting %q: %w", name, mapErr(err))
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// ListSettings implements store.Settings.
func (s *Store) ListSettings(ctx context.Context, prefix string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM settings WHERE starts_with(name, $1) ORDER BY name COLLATE "C"`, prefix)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list settings: %w", mapErr(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: list settings: %w", mapErr(err))
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// CreateSetting implements store.Settings.
func (s *Store) CreateSetting(ctx context.Context, name string, value []byte) error {
	if err := store.CheckSettingName(name); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO NOTHING`, name, nonNil(value))
	if err != nil {
		return fmt.Errorf("pgstore: create setting %q: %w", name, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("setting %q: %w", name, store.ErrAlreadyExists)
	}
	return nil
}

// PutSetting implements store.Settings.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	if err := store.CheckSettingName(name); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, name, nonNil(value))
	if err != nil {
		return fmt.Errorf("pgstore: put setting %q: %w", name, mapErr(err))
	}
	return nil
}

// nonNil returns v, or an empty slice for nil (which pgx would send as
// NULL).
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
