package source

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/sshexec"
)

// gitEnvForTest isolates git from the machine's configuration.
func gitEnvForTest(t *testing.T) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(home, ".gitconfig"))
	for _, k := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_ALLOW_PROTOCOL"} {
		t.Setenv(k, "") // restores the old value at cleanup
		os.Unsetenv(k)
	}
	cfg := "[protocol \"file\"]\n\tallow = always\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// git runs git in dir and returns its trimmed stdout.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s in %s: %v: %s", strings.Join(args, " "), dir, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// repo is an origin (bare, what Mirrors fetch) and a working clone that
// commits and pushes to it.
type repo struct {
	t      *testing.T
	origin string
	work   string
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	base := t.TempDir()
	r := &repo{t: t, origin: filepath.Join(base, "origin.git"), work: filepath.Join(base, "work")}
	git(t, base, "init", "-q", "--bare", r.origin)
	git(t, base, "init", "-q", r.work)
	git(t, r.work, "remote", "add", "origin", r.origin)
	return r
}

// commit writes files (path → content; "" deletes), commits on the current
// branch, pushes it, and returns the commit id.
func (r *repo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, name)
		if content == "" {
			git(r.t, r.work, "rm", "-q", "--", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		git(r.t, r.work, "add", "--", name)
	}
	git(r.t, r.work, "commit", "-q", "--allow-empty", "-m", msg)
	git(r.t, r.work, "push", "-q", "origin", "HEAD")
	return git(r.t, r.work, "rev-parse", "HEAD")
}

func newMirrors(t *testing.T) *Mirrors {
	return &Mirrors{Dir: filepath.Join(t.TempDir(), "mirrors"), GitTimeout: time.Minute, Logger: slog.New(slog.DiscardHandler)}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// testNode is a directory laid out like a node's Bakery root. Its methods
// run a node script's command (cmd, err from its wrapper's Command) through
// sshexec's local executor, as it runs over SSH, with BAKERY_ROOT pointed
// at the directory (nodescript's own tests run them so too).
type testNode struct {
	t    *testing.T
	root string
}

func (n testNode) run(cmd sshexec.Command, err error) (stdout, stderr string, runErr error) {
	n.t.Helper()
	if err != nil {
		n.t.Fatal(err)
	}
	cmd.Env[nodescript.EnvRoot] = n.root
	res, runErr := sshexec.NewLocal().Run(n.t.Context(), cmd)
	return string(res.Stdout), string(res.Stderr), runErr
}

func (n testNode) mustRun(cmd sshexec.Command, err error) string {
	n.t.Helper()
	out, errOut, err := n.run(cmd, err)
	if err != nil {
		n.t.Fatalf("%s: %v\nstderr: %s", cmd.Env[nodescript.EnvScript], err, errOut)
	}
	return out
}
