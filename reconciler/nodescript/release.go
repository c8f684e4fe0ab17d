package nodescript

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/sshexec"
)

// AppInput is the input of the scripts that need only the app's name.
type AppInput struct {
	App string
}

// AppDir creates the app's directory on the node, mode 755 (before a
// bundle is uploaded into it).
var AppDir = define("app-dir", func(in AppInput, c *call) { c.app(in.App) })

// RunDir creates the app's run directory, mode 755 (its slots' run
// scripts, 0644, which the app's own user runs, and docker env files,
// 0600).
var RunDir = define("run-dir", func(in AppInput, c *call) { c.app(in.App) })

// RemoveApp deletes the app's directory on the node.
var RemoveApp = define("remove-app", func(in AppInput, c *call) { c.app(in.App) })

// FetchInput is the input of fetch.
type FetchInput struct {
	App string
	// Bundle is the absolute path on the node the git bundle was uploaded
	// to; fetch removes it.
	Bundle string
	Commit string
}

// Fetch fetches Commit from the uploaded bundle into the app's bare
// repository as refs/bakery/<commit>, creating the repository if needed,
// checks that the commit is then present and removes the bundle whether
// or not the fetch worked. It is safe to run again (with a bundle).
var Fetch = define("fetch", func(in FetchInput, c *call) {
	c.app(in.App)
	c.absPath("BUNDLE", in.Bundle)
	c.commit(in.Commit)
})

// Haves prints the commits under refs/bakery/ in the app's bare
// repository, one per line, and nothing if it does not exist;
// [ParseHaves] reads its output.
var Haves = define("haves", func(in AppInput, c *call) { c.app(in.App) })

// ParseHaves reads the output of haves: the commit ids, without
// duplicates, in order. Blank lines are skipped; anything else that is not
// a commit id is an error.
func ParseHaves(out string) ([]string, error) {
	var haves []string
	seen := make(map[string]bool)
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || seen[l] {
			continue
		}
		if !api.IsCommitID(l) {
			return nil, fmt.Errorf("%w: node haves: %q is not a commit id", ErrInvalid, l)
		}
		seen[l] = true
		haves = append(haves, l)
	}
	return haves, nil
}

// CheckoutInput is the input of checkout.
type CheckoutInput struct {
	App string
	// Release is the release's directory name (nodefiles.ReleaseID).
	Release string
	Commit  string
}

// Checkout (re)creates the release directory with the files of Commit
// from the app's bare repository, atomically (extracted next to it, then
// renamed into place); leftovers of an interrupted run are removed. The
// files are exactly the commit's tree (its .gitattributes export-ignore
// and export-subst do not apply; submodules are left out). Do not run it
// for the release a running slot serves from.
var Checkout = define("checkout", func(in CheckoutInput, c *call) {
	c.app(in.App)
	c.elem("RELEASE", "release", in.Release)
	c.commit(in.Commit)
})

// BuildInput is the input of build.
type BuildInput struct {
	App     string
	Release string // the release's directory name (nodefiles.ReleaseID)
	// Install, Test and Build are the spec's build commands ("" skips one).
	Install, Test, Build string
	// BuildHash is written to the release's built marker on success.
	BuildHash string
	// Env is the app's environment, which the commands see. Names starting
	// with BAKERY_ are the script's (the API refuses them in specs).
	Env map[string]string
}

// envName is a shell variable name (the API's rule for env names).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Build runs the spec's install, test and build commands in the checked
// out release as the app's own user (through the bakery-sudo helper's
// build verb) and writes its built marker when all of them succeeded. The
// commands and the app's environment reach the node as export lines
// quoted with sshexec.Quote, never as script text or on a command line;
// the helper starts it in the release directory (BAKERY_RELEASE).
var Build = define("build", func(in BuildInput, c *call) {
	c.elem("BAKERY_APP", "app name", in.App)
	c.elem("BAKERY_RELEASE_ID", "release", in.Release)
	own := map[string]string{
		"BAKERY_STEP_INSTALL": in.Install,
		"BAKERY_STEP_TEST":    in.Test,
		"BAKERY_STEP_BUILD":   in.Build,
		"BAKERY_BUILD_HASH":   in.BuildHash,
	}
	var b strings.Builder
	// The app's variables first: the script's own below win, as before.
	for _, env := range []map[string]string{in.Env, own} {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !envName.MatchString(k) {
				c.fail("environment variable name %q", k)
				return
			}
			q, err := sshexec.Quote(env[k])
			if err != nil {
				c.fail("variable %s: %v", k, err)
				return
			}
			b.WriteString("export " + k + "=" + q + "\n")
		}
	}
	c.set("BAKERY_EXPORTS", b.String())
})

// PruneInput is the input of prune.
type PruneInput struct {
	App string
	// Keep is how many releases not in Protect stay (the newest).
	Keep int
	// Protect are releases never pruned (those the slots use).
	Protect []string
}

// Prune removes the app's releases beyond the Keep newest (by mtime),
// never one in Protect.
var Prune = define("prune", func(in PruneInput, c *call) {
	c.app(in.App)
	c.setInt("KEEP", int64(in.Keep))
	protect := append([]string(nil), in.Protect...)
	sort.Strings(protect)
	c.set("PROTECT", strings.Join(protect, " "))
})
