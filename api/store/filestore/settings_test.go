package filestore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"bakery.dev/bakery/api/store"
)

// Settings are 0600 files in a 0700 directory, survive a restart, and
// temporary files a crash left are removed at Open.
func TestSettingsOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	if err := s.CreateSetting(ctx, "ssh-identity", []byte("sealed bytes")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "settings", "ssh-identity")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want 0700", filepath.Dir(path), di.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); string(b) != "sealed bytes" {
		t.Errorf("file holds %q", b)
	}
	s.Close()
	if err := s.PutSetting(ctx, "x", nil); !errors.Is(err, errClosed) {
		t.Errorf("put on a closed store: %v", err)
	}
	if _, err := s.GetSetting(ctx, "ssh-identity"); !errors.Is(err, errClosed) {
		t.Errorf("get on a closed store: %v", err)
	}

	tmp := filepath.Join(dir, "settings", ".ssh-identity"+tmpMarker+"123")
	if err := os.WriteFile(tmp, []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	if v, err := s.GetSetting(ctx, "ssh-identity"); err != nil || string(v) != "sealed bytes" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file left after Open: %v", err)
	}
	if err := s.CreateSetting(ctx, "ssh-identity", []byte("other")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("create after reopen: %v", err)
	}
}
