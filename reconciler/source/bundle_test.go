package source

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/sshexec"
)

// treeFiles lists the files of commit as git sees them: path → content,
// with "x:" before executables' content and "link:" before symlink targets.
func treeFiles(t *testing.T, gitDir, commit string) map[string]string {
	t.Helper()
	files := make(map[string]string)
	for _, line := range strings.Split(git(t, gitDir, "ls-tree", "-r", "--full-tree", commit), "\n") {
		meta, name, _ := strings.Cut(line, "\t")
		f := strings.Fields(meta) // mode type object
		content := gitRaw(t, gitDir, "cat-file", "blob", f[2])
		switch f[0] {
		case "100755":
			content = "x:" + content
		case "120000":
			content = "link:" + content
		}
		files[name] = content
	}
	return files
}

// dirFiles lists the files under dir in the form of treeFiles.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			files[rel] = "link:" + target
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[rel] = string(b)
		if info.Mode()&0o100 != 0 {
			files[rel] = "x:" + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func gitRaw(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out := git(t, dir, append([]string{"-c", "core.quotePath=false"}, args...)...)
	return out // trimmed; test contents end in at most one newline and compare after trimming
}

func trimAll(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = strings.TrimSpace(v)
	}
	return out
}

func sameFiles(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	got, want = trimAll(got), trimAll(want)
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("%s: missing %s", what, k)
		case !wok:
			t.Errorf("%s: unexpected %s", what, k)
		case g != w:
			t.Errorf("%s: %s = %.60q, want %.60q", what, k, g, w)
		}
	}
}

func randomText(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func TestBundleOnNode(t *testing.T) {
	gitEnvForTest(t)
	ctx := testCtx(t)
	r := newRepo(t)
	c1 := r.commit("one", map[string]string{
		"big.txt":        randomText(200_000),
		"src/main.go":    "package main\n",
		"run.sh":         "#!/bin/sh\necho hi\n",
		"old.txt":        "old\n",
		".gitattributes": "ignored.txt export-ignore\nsubst.txt export-subst\nsrc export-ignore\n/docs/ export-ignore\n",
		"ignored.txt":    "still checked out\n",
		"subst.txt":      "$Format:%H$\n",
	})
	if err := os.Symlink("src/main.go", filepath.Join(r.work, "link")); err != nil {
		t.Fatal(err)
	}
	git(t, r.work, "add", "link")
	git(t, r.work, "update-index", "--chmod=+x", "run.sh")
	c2 := r.commit("two", map[string]string{
		"src/main.go": "package main\n\nfunc main() {}\n",
		"docs/new.md": "# new\n",
		"old.txt":     "",
	})
	m := newMirrors(t)
	if got, err := m.Resolve(ctx, r.origin, "main", ""); err != nil || got != c2 {
		t.Fatalf("Resolve = %s, %v; want %s", got, err, c2)
	}

	full1, size1, clean1, err := m.Bundle(ctx, r.origin, c1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer clean1()
	_, fullSize2, clean2, err := m.Bundle(ctx, r.origin, c2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer clean2()
	unknown := strings.Repeat("0123456789", 4)
	inc, incSize, cleanInc, err := m.Bundle(ctx, r.origin, c2, []string{unknown, c1, c1})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanInc()
	t.Logf("bundle sizes: full c1 %d, full c2 %d, c2 given c1 %d", size1, fullSize2, incSize)
	if fi, err := os.Stat(full1); err != nil || fi.Size() != size1 {
		t.Fatalf("size of %s: %v, %v; Bundle said %d", full1, fi, err, size1)
	}
	if incSize >= fullSize2 || incSize > 10_000 {
		t.Errorf("incremental bundle is %d bytes, full %d: want much smaller", incSize, fullSize2)
	}
	// The incremental bundle needs c1; the full one needs nothing.
	if out := git(t, r.work, "bundle", "list-heads", inc); !strings.Contains(out, c2+" refs/bakery/"+c2) {
		t.Errorf("bundle heads = %q, want refs/bakery/%s", out, c2)
	}

	if _, _, _, err := m.Bundle(ctx, r.origin, c2, []string{c1, c2}); !errors.Is(err, ErrUpToDate) {
		t.Errorf("haves contain the commit: err = %v, want ErrUpToDate", err)
	}
	if _, _, _, err := m.Bundle(ctx, r.origin, c1, []string{c2}); !errors.Is(err, ErrUpToDate) {
		t.Errorf("commit is an ancestor of a have: err = %v, want ErrUpToDate", err)
	}
	if _, _, _, err := m.Bundle(ctx, r.origin, strings.Repeat("ab", 20), nil); !errors.Is(err, ErrCommitNotFound) {
		t.Errorf("unknown commit: err = %v, want ErrCommitNotFound", err)
	}
	if _, _, _, err := m.Bundle(ctx, r.origin, c2, []string{"HEAD"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("malformed have: err = %v, want ErrInvalid", err)
	}

	// The node: a Bakery root whose name needs quoting, where the
	// nodescript wrappers run as they do over SSH.
	node := filepath.Join(t.TempDir(), "node dir 'q' $x")
	n := testNode{t, node}
	const app = "hello"
	if out := n.mustRun(nodescript.Haves.Command(nodescript.AppInput{App: app})); out != "" {
		t.Errorf("haves of a missing repo = %q, want nothing", out)
	}
	fetch := func(bundle, commit string) (sshexec.Command, error) {
		return nodescript.Fetch.Command(nodescript.FetchInput{App: app, Bundle: bundle, Commit: commit})
	}
	checkout := func(release, commit string) (sshexec.Command, error) {
		return nodescript.Checkout.Command(nodescript.CheckoutInput{App: app, Release: release, Commit: commit})
	}
	haves := func() string { return n.mustRun(nodescript.Haves.Command(nodescript.AppInput{App: app})) }

	// A copy of each bundle, as the caller would upload it; the script
	// removes it.
	upload := func(src string) string {
		t.Helper()
		if err := os.MkdirAll(node, 0o755); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(node, "upload-"+filepath.Base(src))
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return dst
	}

	// The incremental bundle cannot go first: the node lacks c1.
	b := upload(inc)
	if _, errOut, err := n.run(fetch(b, c2)); err == nil {
		t.Fatal("fetching the incremental bundle into an empty repo succeeded")
	} else if !strings.Contains(errOut, "prerequisite") {
		t.Errorf("stderr = %q, want git's prerequisite message", errOut)
	}
	if _, err := os.Stat(b); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bundle %s not removed after a failed fetch", b)
	}

	b = upload(full1)
	n.mustRun(fetch(b, c1))
	if _, err := os.Stat(b); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bundle %s not removed", b)
	}
	if got := strings.Fields(haves()); !slices.Equal(got, []string{c1}) {
		t.Errorf("haves = %q, want [c1]", got)
	}
	b = upload(inc)
	n.mustRun(fetch(b, c2))
	nodeHaves, err := nodescript.ParseHaves(haves())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{c1, c2}
	slices.Sort(want)
	slices.Sort(nodeHaves)
	if !slices.Equal(nodeHaves, want) {
		t.Errorf("haves = %q, want %q", nodeHaves, want)
	}
	// Fetching the same bundle again is harmless.
	n.mustRun(fetch(upload(inc), c2))
	// With those haves, there is nothing left to send.
	if _, _, _, err := m.Bundle(ctx, r.origin, c2, nodeHaves); !errors.Is(err, ErrUpToDate) {
		t.Errorf("err = %v, want ErrUpToDate", err)
	}

	releases := filepath.Join(node, "apps", app, "releases")
	release := filepath.Join(releases, c2)
	n.mustRun(checkout(c2, c2))
	wantFiles := treeFiles(t, r.work, c2)
	if _, ok := wantFiles["ignored.txt"]; !ok || !strings.Contains(wantFiles["subst.txt"], "$Format") {
		t.Fatalf("test setup: tree of c2 = %v", wantFiles)
	}
	sameFiles(t, "release c2", dirFiles(t, release), wantFiles)

	// Again, over a release someone scribbled in: the same files.
	if err := os.WriteFile(filepath.Join(release, "stray"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(release, "run.sh")); err != nil {
		t.Fatal(err)
	}
	n.mustRun(checkout(c2, c2))
	n.mustRun(checkout(c2, c2))
	sameFiles(t, "release c2 after re-runs", dirFiles(t, release), wantFiles)
	entries, err := os.ReadDir(releases)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("releases dir = %q, want only the release (no temporary leftovers)", names)
	}

	// An older commit the node has: checkout works without a bundle.
	n.mustRun(checkout(c1, c1))
	sameFiles(t, "release c1", dirFiles(t, filepath.Join(releases, c1)), treeFiles(t, r.work, c1))

	// A commit the node lacks: the checkout fails and leaves nothing.
	if _, errOut, err := n.run(checkout("missing", strings.Repeat("ab", 20))); err == nil || !strings.Contains(errOut, "not in") {
		t.Errorf("checkout of a missing commit: err %v, stderr %q", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(releases, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed checkout created %s", filepath.Join(releases, "missing"))
	}
}

func TestBundleBeforeResolve(t *testing.T) {
	gitEnvForTest(t)
	m := newMirrors(t)
	_, _, _, err := m.Bundle(testCtx(t), "/nowhere", strings.Repeat("ab", 20), nil)
	if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), "Resolve first") {
		t.Fatalf("err = %v, want ErrCommitNotFound telling to Resolve first", err)
	}
}
