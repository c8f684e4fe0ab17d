package source

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNodeScriptsRejectInvalidInput(t *testing.T) {
	dir := t.TempDir()
	good := strings.Repeat("ab", 20)
	tests := []struct {
		name, script, want string
	}{
		{"fetch: short commit", NodeFetchScript(dir+"/r", dir+"/b", "abc"), "not a full commit id"},
		{"fetch: option commit", NodeFetchScript(dir+"/r", dir+"/b", "--upload-pack=x"), "not a full commit id"},
		{"fetch: empty repo", NodeFetchScript("", dir+"/b", good), "empty repo"},
		{"fetch: NUL in bundle", NodeFetchScript(dir+"/r", dir+"/b\x00", good), "NUL"},
		{"checkout: root release", NodeCheckoutScript(dir+"/r", "/", good), "names no directory"},
		{"checkout: dot release", NodeCheckoutScript(dir+"/r", "a/..", good), "names no directory"},
		{"checkout: empty release", NodeCheckoutScript(dir+"/r", "", good), "empty release"},
		{"checkout: bad commit", NodeCheckoutScript(dir+"/r", dir+"/rel", strings.ToUpper(good)), "not a full commit id"},
		{"haves: empty repo", NodeHavesScript(""), "empty repo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.script, "\x00") {
				t.Fatalf("script contains a NUL: %q", tt.script)
			}
			_, errOut, err := sh(t, dir, tt.script)
			var ee interface{ ExitCode() int }
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("err = %v, want exit status 2", err)
			}
			if !strings.Contains(errOut, tt.want) || !strings.HasPrefix(errOut, "bakery: Node") {
				t.Errorf("stderr = %q, want a message containing %q", errOut, tt.want)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected scripts created %d entries", len(entries))
	}
}

// Paths that start with "-" or contain shell syntax reach the commands
// as plain paths.
func TestNodeScriptsOddPaths(t *testing.T) {
	gitEnvForTest(t)
	ctx := testCtx(t)
	r := newRepo(t)
	c1 := r.commit("one", map[string]string{"f": "1\n"})
	m := newMirrors(t)
	if _, err := m.Resolve(ctx, r.origin, "main", ""); err != nil {
		t.Fatal(err)
	}
	bundle, _, cleanup, err := m.Bundle(ctx, r.origin, c1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	node := t.TempDir()
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(node, "-b; rm -rf ~"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	repoDir, release := "-repo.git", "-rel $(touch pwned)/"
	mustSh(t, node, NodeFetchScript(repoDir, "-b; rm -rf ~", c1))
	mustSh(t, node, NodeCheckoutScript(repoDir, release, c1))
	got, err := ParseHaves(mustSh(t, node, NodeHavesScript(repoDir)))
	if err != nil || !slices.Equal(got, []string{c1}) {
		t.Errorf("haves = %q, %v", got, err)
	}
	if b, err := os.ReadFile(filepath.Join(node, "-rel $(touch pwned)", "f")); err != nil || string(b) != "1\n" {
		t.Errorf("release file: %q, %v", b, err)
	}
	for _, name := range []string{"pwned", "-b; rm -rf ~"} {
		if _, err := os.Stat(filepath.Join(node, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists (err %v)", name, err)
		}
	}
}

func TestParseHaves(t *testing.T) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	got, err := ParseHaves("\n" + a + "\n" + b + "\r\n" + a + "\n\n")
	if err != nil || !slices.Equal(got, []string{a, b}) {
		t.Errorf("ParseHaves = %q, %v", got, err)
	}
	if got, err := ParseHaves(""); err != nil || len(got) != 0 {
		t.Errorf("ParseHaves(\"\") = %q, %v", got, err)
	}
	if _, err := ParseHaves(a + "\nfatal: not a git repository\n"); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage: err = %v, want ErrInvalid", err)
	}
}
