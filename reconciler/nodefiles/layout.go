package nodefiles

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Root is Bakery's directory on a node.
const Root = "/var/lib/bakery"

// Slots of the blue/green scheme.
const (
	Blue  = "blue"
	Green = "green"
)

// Slots lists both slots in a fixed order.
var Slots = []string{Blue, Green}

// Other returns the other slot ("" → blue).
func Other(slot string) string {
	if slot == Blue {
		return Green
	}
	return Blue
}

// SudoHelper is the one command bakery-agent may run with sudo.
const SudoHelper = "/usr/local/lib/bakery/bakery-sudo"

// AppDir is /var/lib/bakery/apps/<app>.
func AppDir(app string) string { return path.Join(Root, "apps", app) }

// RepoDir is the app's bare repository on the node.
func RepoDir(app string) string { return path.Join(AppDir(app), "repo.git") }

// ReleasesDir holds the checked-out, built releases.
func ReleasesDir(app string) string { return path.Join(AppDir(app), "releases") }

// ReleaseID names the release of a commit built with given build commands
// (their hash): a change of build commands makes a new release directory
// instead of rebuilding the one a running slot works in.
func ReleaseID(commit, buildHash string) string { return commit + "-" + buildHash }

// ReleaseDir is the directory of a release.
func ReleaseDir(app, release string) string { return path.Join(ReleasesDir(app), release) }

// StatePath is the app's state file.
func StatePath(app string) string { return path.Join(AppDir(app), "state.json") }

// EnvPath is the environment file of a slot. It is written by the node's
// bakery-sudo helper (env-install) into a root-owned 0700 directory as a
// root 0600 file: systemd reads it as root, so it must not live where
// bakery-agent could plant a symlink to another file.
func EnvPath(app, slot string) string { return "/etc/bakery/env/bakery-" + app + "-" + slot + ".env" }

// UnitName is the systemd unit of a slot.
func UnitName(app, slot string) string { return "bakery-" + app + "-" + slot + ".service" }

// SitePath is the app's nginx site.
func SitePath(app string) string { return "/etc/nginx/conf.d/bakery-" + app + ".conf" }

// BuiltMarker exists in a release directory once install, test and build
// succeeded there; its content is the build's spec hash.
const BuiltMarker = ".bakery-built"

// Hash returns a short hex SHA-256 of parts, used to tell whether a
// generated file or a spec changed.
func Hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// EnvFile renders environment variables as a systemd EnvironmentFile: one
// KEY="value" per variable, sorted by name. Inside the double quotes,
// systemd's parser treats a backslash before \ " $ and ` as an escape and
// keeps every other byte (newlines included) as is, so values read back
// exactly. Values never appear on a command line.
func EnvFile(env map[string]string) string {
	if len(env) == 0 {
		// The node's helper refuses empty content.
		return "# no environment variables\n"
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(`"`)
		b.WriteString(envEscaper.Replace(env[k]))
		b.WriteString(`"`)
		b.WriteString("\n")
	}
	return b.String()
}

var envEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
