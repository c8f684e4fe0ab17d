package nodescript

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/sshexec"
)

// These tests run the scripts that need no root through sshexec's local
// executor, with BAKERY_ROOT pointing at a temporary directory laid out
// like a node.

// TestObserveNodeLocal runs observe-node on this machine (moved from
// reconciler's TestObserveLocal, then reconciler/node's).
func TestObserveNodeLocal(t *testing.T) {
	obs, err := ObserveNodeOn(t.Context(), sshexec.NewLocal(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Kernel == "" || obs.Disk == nil || obs.Disk.FilesystemBytes <= 0 || obs.Disk.FreeBytes <= 0 {
		t.Fatalf("incomplete observation: %+v", obs)
	}
	if len(obs.Missing([]string{"git"})) != 0 {
		t.Fatalf("git not found on the test machine: %+v", obs.Tools)
	}
	// Bakery's root from the environment: a temporary one is measured.
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), make([]byte, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := ObserveNode.Command(struct{}{})
	o, err := ParseNodeObservation(mustRun(t, cmd, err, root))
	if err != nil {
		t.Fatal(err)
	}
	if o.Disk == nil || o.Disk.BakeryBytes < 10000 {
		t.Errorf("disk %+v", o.Disk)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestObserveAppLocal runs observe-app against a temporary root holding
// the app's state, releases and repository and another app's state.
func TestObserveAppLocal(t *testing.T) {
	bin := fakeBin(t) // systemctl and sudo (cert-info)
	root := t.TempDir()
	c1 := strings.Repeat("1", 40)
	st := &nf.AppState{App: "web", Active: nf.Blue, Slots: map[string]nf.SlotState{nf.Blue: {Commit: c1, Release: c1 + "-h", Port: 20000}}}
	writeFile(t, filepath.Join(root, "apps", "web", "state.json"), string(st.Marshal()))
	writeFile(t, filepath.Join(root, "apps", "web", "releases", c1+"-h", ".bakery-built"), "h")
	writeFile(t, filepath.Join(root, "apps", "web", "releases", "half", "f"), "")
	writeFile(t, filepath.Join(root, "apps", "other", "state.json"), `{"version": 1, "app": "other", "active": "blue", "slots": {"blue": {"port": 20002}}}`)
	git(t, "", "init", "-q", "--bare", filepath.Join(root, "apps", "web", "repo.git"))
	cmd, err := ObserveApp.Command(ObserveAppInput{App: "web", CertHosts: []string{"a.test", "b.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Env["SITE"] != nf.SitePath("web") || cmd.Env["CERTS"] != "a.test b.test" || cmd.Env["RUNTIME"] != "" {
		t.Fatalf("env %q", cmd.Env)
	}
	site := filepath.Join(root, "site.conf")
	writeFile(t, site, "server {}\n")
	cmd.Env["SITE"] = site
	out := mustRun(t, cmd, nil, root)
	o, err := ParseAppObservation(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if diff := cmp.Diff(st, o.State); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"blue": "inactive", "green": "inactive"}, o.Units); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{c1 + "-h": "h", "half": ""}, o.Releases); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	if o.SiteHash != sha256Hex("server {}\n") {
		t.Errorf("site hash %q", o.SiteHash)
	}
	if !o.UsedPorts[20002] || o.UsedPorts[20000] {
		t.Errorf("used ports %v", o.UsedPorts)
	}
	if len(o.Certs) != 2 || o.Certs["a.test"].Serial != "4BB424659C012AA1" {
		t.Errorf("certs %+v", o.Certs)
	}
	if calls := readCalls(t, bin); !slices.Contains(calls, "sudo -n "+nf.SudoHelper+" cert-info a.test b.test") {
		t.Errorf("calls %q", calls)
	}
	// A never deployed app.
	cmd, err = ObserveApp.Command(ObserveAppInput{App: "new"})
	o, err = ParseAppObservation(mustRun(t, cmd, err, root))
	if err != nil || o.State != nil || len(o.Releases) != 0 || o.SiteHash != "" {
		t.Errorf("new app: %+v, %v", o, err)
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// bundleOf commits files to a new repository and returns the commit and a
// bundle holding it as refs/bakery/<commit> (what the control plane
// ships).
func bundleOf(t *testing.T, files map[string]string) (commit, bundle string) {
	t.Helper()
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "c")
	commit = git(t, dir, "rev-parse", "HEAD")
	git(t, dir, "update-ref", "refs/bakery/"+commit, commit)
	bundle = filepath.Join(t.TempDir(), "b.bundle")
	git(t, dir, "bundle", "create", "-q", bundle, "refs/bakery/"+commit)
	return commit, bundle
}

// TestDeliverLocal ships a commit the way a rollout does: app-dir,
// fetch from an uploaded bundle, haves, checkout, build, prune, and
// finally remove-app; the app name is hostile and the bundle path odd.
func TestDeliverLocal(t *testing.T) {
	root := t.TempDir()
	const app = `a'b$(touch pwned)`
	commit, src := bundleOf(t, map[string]string{"f": "1\n", ".gitattributes": "f export-ignore\n"})
	mustRun(t, cmdOf(AppDir.Command(AppInput{App: app})), nil, root)
	appDir := filepath.Join(root, "apps", app)
	if fi, err := os.Stat(appDir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("app dir: %v %v", fi, err)
	}
	bundle := filepath.Join(appDir, "-b; rm -rf ~")
	b, _ := os.ReadFile(src)
	writeFile(t, bundle, string(b))
	cmd, err := Fetch.Command(FetchInput{App: app, Bundle: bundle, Commit: commit})
	mustRun(t, cmd, err, root)
	if _, err := os.Stat(bundle); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bundle not removed: %v", err)
	}
	cmd, err = Haves.Command(AppInput{App: app})
	haves, err := ParseHaves(mustRun(t, cmd, err, root))
	if err != nil || !slices.Equal(haves, []string{commit}) {
		t.Fatalf("haves %q, %v", haves, err)
	}
	release := nf.ReleaseID(commit, "h1")
	for range 2 { // again: the same result
		cmd, err = Checkout.Command(CheckoutInput{App: app, Release: release, Commit: commit})
		mustRun(t, cmd, err, root)
	}
	relDir := filepath.Join(appDir, "releases", release)
	if b, err := os.ReadFile(filepath.Join(relDir, "f")); err != nil || string(b) != "1\n" {
		t.Fatalf("release file (export-ignore must not apply): %q, %v", b, err)
	}
	// A release name that looks like an option and holds shell syntax
	// (moved from reconciler/source's TestNodeScriptsOddPaths).
	odd := "-rel $(touch pwned)"
	cmd, err = Checkout.Command(CheckoutInput{App: app, Release: odd, Commit: commit})
	mustRun(t, cmd, err, root)
	if b, err := os.ReadFile(filepath.Join(appDir, "releases", odd, "f")); err != nil || string(b) != "1\n" {
		t.Fatalf("odd release file: %q, %v", b, err)
	}
	if err := os.RemoveAll(filepath.Join(appDir, "releases", odd)); err != nil {
		t.Fatal(err)
	}
	fakeBin(t) // sudo: like the helper's build verb, runs the script it reads in the release
	cmd, err = Build.Command(BuildInput{App: app, Release: release, Install: `echo "$GREETING" > installed`, Test: "test -f f",
		Build: `printf '%s' "$BAKERY_RELEASE" > where`, BuildHash: "h1", Env: map[string]string{"GREETING": `hi $(touch pwned) 'x'`}})
	mustRun(t, cmd, err, root)
	for name, want := range map[string]string{"installed": "hi $(touch pwned) 'x'\n", "where": relDir, ".bakery-built": "h1"} {
		if b, err := os.ReadFile(filepath.Join(relDir, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	// A failing step: no marker, exit status 1.
	cmd, err = Build.Command(BuildInput{App: app, Release: release, Test: "false", BuildHash: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	var ee *sshexec.ExitError
	if res, err := runLocal(t, cmd, root); !errors.As(err, &ee) || !strings.Contains(string(res.Stderr), "bakery: test failed") {
		t.Errorf("failing build: %v %s", err, res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(relDir, ".bakery-built")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("marker after a failed build: %v", err)
	}
	// Prune keeps the protected and the newest KEEP others.
	for i, r := range []string{"old1", "old2", "old3"} {
		writeFile(t, filepath.Join(appDir, "releases", r, "x"), "")
		mt := time.Now().Add(time.Duration(i-10) * time.Hour)
		os.Chtimes(filepath.Join(appDir, "releases", r), mt, mt)
	}
	cmd, err = Prune.Command(PruneInput{App: app, Keep: 1, Protect: []string{release}})
	out := mustRun(t, cmd, err, root)
	if out != "bakery: pruning release old2\nbakery: pruning release old1\n" {
		t.Errorf("prune: %q", out)
	}
	mustRun(t, cmdOf(RunDir.Command(AppInput{App: app})), nil, root)
	if fi, err := os.Stat(filepath.Join(appDir, "run")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("run dir: %v %v", fi, err)
	}
	mustRun(t, cmdOf(RemoveApp.Command(AppInput{App: app})), nil, root)
	if _, err := os.Stat(appDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("app dir left: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "apps")); len(entries) != 0 {
		t.Errorf("apps left: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(root, "pwned")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a value was run as code")
	}
}

// A commit the repository lacks fails checkout without touching the
// release; a bad bundle fails fetch and still removes it.
func TestDeliverFailures(t *testing.T) {
	root := t.TempDir()
	git(t, "", "init", "-q", "--bare", filepath.Join(root, "apps", "web", "repo.git"))
	cmd, err := Checkout.Command(CheckoutInput{App: "web", Release: "r", Commit: strings.Repeat("ab", 20)})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := runLocal(t, cmd, root); err == nil || !strings.Contains(string(res.Stderr), "is not in") {
		t.Errorf("checkout of a missing commit: %v %s", err, res.Stderr)
	}
	bundle := filepath.Join(root, "apps", "web", "bad.bundle")
	writeFile(t, bundle, "not a bundle")
	cmd, err = Fetch.Command(FetchInput{App: "web", Bundle: bundle, Commit: strings.Repeat("ab", 20)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runLocal(t, cmd, root); err == nil {
		t.Error("fetch of a bad bundle succeeded")
	}
	if _, err := os.Stat(bundle); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bad bundle not removed: %v", err)
	}
}

// docker-build runs docker build with every build argument as one
// argument (fake docker).
func TestDockerBuildLocal(t *testing.T) {
	bin := fakeBin(t)
	root := t.TempDir()
	commit := strings.Repeat("c", 40)
	rel := filepath.Join(root, "apps", "web", "releases", "r1")
	writeFile(t, filepath.Join(rel, "Dockerfile"), "FROM scratch\n")
	cmd, err := DockerBuild.Command(DockerBuildInput{App: "web", Release: "r1", Commit: commit, Dockerfile: "Dockerfile", BuildHash: "h",
		BuildArgs: map[string]string{"B": "x $(touch pwned) 'y'", "A": "1"}})
	mustRun(t, cmd, err, root)
	want := "docker build --force-rm -f Dockerfile -t bakery/web:r1 --label bakery.app=web --label bakery.commit=" + commit +
		" --build-arg BAKERY_COMMIT=" + commit + " --build-arg A=1 --build-arg B=x $(touch pwned) 'y' ."
	if calls := readCalls(t, bin); len(calls) != 1 || calls[0] != want {
		t.Errorf("calls %q\nwant %q", calls, want)
	}
	if b, err := os.ReadFile(filepath.Join(rel, ".bakery-built")); err != nil || string(b) != "h" {
		t.Errorf("marker %q %v", b, err)
	}
	cmd, err = DockerBuild.Command(DockerBuildInput{App: "web", Release: "r1", Commit: commit, Dockerfile: "Missing"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := runLocal(t, cmd, root); err == nil || !strings.Contains(string(res.Stderr), "Missing not found") {
		t.Errorf("missing Dockerfile: %v %s", err, res.Stderr)
	}
}

func cmdOf(cmd sshexec.Command, err error) sshexec.Command {
	if err != nil {
		panic(err)
	}
	return cmd
}
