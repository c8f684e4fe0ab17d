package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"bakery.dev/bakery/api/client"
)

// config is the client config file written by `bakery login`:
//
//	server: http://127.0.0.1:8080
//	token: bkr_...
type config struct {
	Server string `json:"server,omitempty"`
	Token  string `json:"token,omitempty"`
}

// configFile returns the config file's path: --config, $BAKERY_CONFIG, or
// <os.UserConfigDir>/bakery/config.yaml ($XDG_CONFIG_HOME/bakery/config.yaml
// on Linux, ~/.config/bakery/config.yaml when XDG_CONFIG_HOME is unset).
func (a *app) configFile() (string, error) {
	if a.configPath != "" {
		return a.configPath, nil
	}
	if p := os.Getenv("BAKERY_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w (set BAKERY_CONFIG)", err)
	}
	return filepath.Join(dir, "bakery", "config.yaml"), nil
}

// readConfig reads the config file; a missing file is an empty config.
func readConfig(path string) (config, error) {
	var c config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, nil
}

// writeConfig writes c to path with 0600 permissions (its directory 0700),
// atomically.
func writeConfig(path string, c config) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := renameio.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// resolved is where the client settings came from, for error messages.
type resolved struct {
	server, token       string
	serverSrc, tokenSrc string
	configPath          string
}

// resolve applies the precedence flag > environment > config file to the
// server address and the token, each on its own.
func (a *app) resolve(cmd *cobra.Command) (resolved, error) {
	var r resolved
	path, err := a.configFile()
	if err != nil {
		return r, err
	}
	r.configPath = path
	file, err := readConfig(path)
	if err != nil {
		return r, err
	}
	pick := func(flag, val, env, fromFile string) (string, string) {
		if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
			return val, "--" + flag
		}
		if v := os.Getenv(env); v != "" {
			return v, env
		}
		if fromFile != "" {
			return fromFile, path
		}
		return "", ""
	}
	r.server, r.serverSrc = pick("server", a.server, "BAKERY_SERVER", file.Server)
	r.token, r.tokenSrc = pick("token", a.token, "BAKERY_TOKEN", file.Token)
	return r, nil
}

// client returns an API client configured from flags, environment and the
// config file, or a clear error when no server or token is configured.
func (a *app) client(cmd *cobra.Command) (*client.Client, error) {
	r, err := a.resolve(cmd)
	if err != nil {
		return nil, err
	}
	if r.server == "" {
		return nil, fmt.Errorf("no Bakery server configured: pass --server URL, set BAKERY_SERVER, or run 'bakery login --server URL --token TOKEN' (writes %s)", r.configPath)
	}
	if r.token == "" {
		return nil, fmt.Errorf("no API token configured for %s: pass --token, set BAKERY_TOKEN, or run 'bakery login --server %s --token TOKEN' (the server prints the admin token on its first start)", r.server, r.server)
	}
	c, err := client.New(r.server, r.token, client.WithVersion(version), client.WithTimeout(a.timeout))
	if err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, r.serverSrc)
	}
	return c, nil
}
