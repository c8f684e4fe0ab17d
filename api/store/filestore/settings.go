package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"bakery.dev/bakery/api/store"
)

// Settings (store.Settings) live in <dir>/settings, one 0600 file per
// setting named as the setting (store.CheckSettingName makes every name a
// safe file name), holding the value's bytes. Writes are atomic (temporary
// file, fsync, rename) and serialised with transactions by the store's
// lock, so CreateSetting's "exists?" check and its write are one step;
// other processes are kept out of the data directory by its flock. Reads go
// to the file. Settings are not objects: they are not watched and send no
// events.

var _ store.Settings = (*Store)(nil)

const settingsDir = "settings"

func (s *Store) settingPath(name string) string { return filepath.Join(s.dir, settingsDir, name) }

// initSettings creates the settings directory (0700) and removes
// temporary files a crash left in it.
func (s *Store) initSettings() error {
	dir := filepath.Join(s.dir, settingsDir)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := os.Chmod(dir, dirPerm); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := removeTemps(dir); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	return nil
}

// GetSetting implements store.Settings.
func (s *Store) GetSetting(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckSettingName(name); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, errClosed
	}
	v, err := os.ReadFile(s.settingPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("setting %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("filestore: get setting %q: %w", name, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// ListSettings implements store.Settings. Files whose names are not
// setting names (temporary files) are left out.
func (s *Store) ListSettings(ctx context.Context, prefix string) ([]string, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, settingsDir))
	if err != nil {
		return nil, fmt.Errorf("filestore: list settings: %w", err)
	}
	out := []string{}
	for _, e := range ents {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, prefix) && store.CheckSettingName(n) == nil {
			out = append(out, n)
		}
	}
	return out, nil // os.ReadDir sorts by name
}

// CreateSetting implements store.Settings.
func (s *Store) CreateSetting(ctx context.Context, name string, value []byte) error {
	return s.writeSetting(ctx, name, value, false)
}

// PutSetting implements store.Settings.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	return s.writeSetting(ctx, name, value, true)
}

func (s *Store) writeSetting(ctx context.Context, name string, value []byte, replace bool) error {
	if err := store.CheckSettingName(name); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	path := s.settingPath(name)
	if !replace {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("setting %q: %w", name, store.ErrAlreadyExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("filestore: create setting %q: %w", name, err)
		}
	}
	if err := writeAtomic(path, value, statePerm); err != nil {
		return fmt.Errorf("filestore: write setting %q: %w", name, err)
	}
	return nil
}
