package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"bakery.dev/bakery/api/github"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/manifestsync"
)

// secretsKeyring returns the keyring that seals webhook secrets and OAuth
// tokens. With the postgres store it is the one already loaded. With the
// file store it is BAKERY_ENCRYPTION_KEY (or --encryption-key-file) when
// given, else a key minted on first start in <data>/encryption-key (0600),
// beside the data it protects — as the file store keeps the SSH key.
func secretsKeyring(o serverOptions, loaded *sealed.Keyring) (*sealed.Keyring, error) {
	if loaded != nil {
		return loaded, nil
	}
	if o.encryptionKeyFile != "" || strings.TrimSpace(os.Getenv(encryptionKeyEnv)) != "" {
		return loadKeyring(o.encryptionKeyFile)
	}
	file := filepath.Join(o.data, "encryption-key")
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		if err := renameio.WriteFile(file, []byte(sealed.NewKey()+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("encryption key: %w", err)
		}
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	kr, err := sealed.ParseKeyring(string(b))
	if err != nil {
		return nil, fmt.Errorf("encryption key %s: %w", file, err)
	}
	return kr, nil
}

// watchManifests starts the watcher of --manifests: it fails at once when
// the directory cannot be watched, then runs until ctx ends.
func watchManifests(ctx context.Context, dir string, st store.Store, allowLocalNodes bool, log *slog.Logger) (<-chan error, error) {
	if dir == "" {
		return nil, nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", dir)
		}
		return nil, usageErrorf("--manifests: %v", err)
	}
	w := &manifestsync.Watcher{Dir: dir, Store: st, DeleteViaLoop: true, AllowLocalNodes: allowLocalNodes, Logger: log}
	done := make(chan error, 1)
	go func() {
		err := w.Run(ctx)
		if err != nil {
			log.Error("the manifests directory is no longer watched", "dir", dir, "err", err)
		}
		done <- err
	}()
	return done, nil
}

// githubConfig is the GitHub integration's configuration, or nil when no
// client id is given.
func githubConfig(o serverOptions) (*github.Client, error) {
	if o.githubClientID == "" {
		return nil, nil
	}
	secret := os.Getenv("BAKERY_GITHUB_CLIENT_SECRET")
	if secret == "" {
		return nil, usageErrorf("--github-client-id needs the OAuth app's client secret in BAKERY_GITHUB_CLIENT_SECRET")
	}
	for _, u := range []struct{ flag, v string }{{"--github-url", o.githubURL}, {"--github-api-url", o.githubAPIURL}} {
		if pu, err := url.Parse(u.v); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return nil, usageErrorf("%s: %q is not an http(s) URL", u.flag, u.v)
		}
	}
	return &github.Client{ClientID: o.githubClientID, ClientSecret: secret, WebURL: o.githubURL, APIURL: o.githubAPIURL}, nil
}
