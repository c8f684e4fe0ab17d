package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFiles(t *testing.T) {
	gitEnvForTest(t)
	ctx := testCtx(t)
	r := newRepo(t)
	r.commit("files", map[string]string{
		"deploy/a.yaml":         "a: 1\n",
		"deploy/sub/b.yaml":     "b: 2\n",
		"deploy/notes.txt":      "not matched\n",
		"deploy2/c.yaml":        "c: 3\n",
		"other/big.yaml":        strings.Repeat("x", 5000),
		"deploy/with\ttab.yaml": "t: 1\n",
	})
	// A symlink in the tree is skipped, never followed.
	if err := os.Symlink("/etc/passwd", filepath.Join(r.work, "deploy", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	git(t, r.work, "add", "-A")
	git(t, r.work, "commit", "-q", "-m", "link")
	git(t, r.work, "push", "-q", "origin", "HEAD")
	c := git(t, r.work, "rev-parse", "HEAD")
	m := newMirrors(t)
	if _, err := m.Resolve(ctx, r.origin, "refs/heads/"+git(t, r.work, "branch", "--show-current"), ""); err != nil {
		t.Fatal(err)
	}
	yaml := func(p string) bool { return strings.HasSuffix(p, ".yaml") }
	fs, err := m.Files(ctx, r.origin, c, "deploy", yaml, 1000, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Path+"="+strings.TrimSpace(string(f.Data)))
	}
	if strings.Join(got, " ") != "deploy/a.yaml=a: 1 deploy/sub/b.yaml=b: 2 deploy/with\ttab.yaml=t: 1" {
		t.Fatalf("files: %q", got)
	}
	// The whole tree, with limits.
	if _, err := m.Files(ctx, r.origin, c, ".", yaml, 1000, 100000); err == nil || !strings.Contains(err.Error(), "other/big.yaml") {
		t.Fatalf("a file over the limit: %v", err)
	}
	if _, err := m.Files(ctx, r.origin, c, ".", yaml, 100000, 100); err == nil || !strings.Contains(err.Error(), "more than 100 bytes") {
		t.Fatalf("over the total: %v", err)
	}
	if _, err := m.Files(ctx, r.origin, c, "nope", yaml, 1000, 1000); err == nil || !strings.Contains(err.Error(), `no path "nope"`) {
		t.Fatalf("missing path: %v", err)
	}
	for _, bad := range []string{"../x", "/etc", "-x", "a//b", ""} {
		if _, err := m.Files(ctx, r.origin, c, bad, yaml, 1000, 1000); !errors.Is(err, ErrInvalid) {
			t.Errorf("path %q: %v", bad, err)
		}
	}
}
