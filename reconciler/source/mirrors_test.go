package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	gitEnvForTest(t)
	ctx := testCtx(t)
	r := newRepo(t)
	c1 := r.commit("one", map[string]string{"a.txt": "one\n"})
	git(t, r.work, "tag", "-a", "-m", "release v1", "v1")
	git(t, r.work, "tag", "light", c1)
	c2 := r.commit("two", map[string]string{"a.txt": "two\n"})
	git(t, r.work, "push", "-q", "origin", "v1", "light")
	git(t, r.work, "checkout", "-q", "-b", "feature/x")
	c3 := r.commit("three", map[string]string{"b.txt": "three\n"})
	m := newMirrors(t)

	tests := []struct {
		name, ref, pinned, want string
	}{
		{"branch", "main", "", c2},
		{"branch with slash", "feature/x", "", c3},
		{"annotated tag is peeled", "v1", "", c1},
		{"lightweight tag", "light", "", c1},
		{"qualified branch", "refs/heads/main", "", c2},
		{"qualified tag", "refs/tags/v1", "", c1},
		{"pinned wins over ref", "main", c1, c1},
		{"pinned without ref", "", c3, c3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Resolve(ctx, r.origin, tt.ref, tt.pinned)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q, %q) = %s, want %s", tt.ref, tt.pinned, got, tt.want)
			}
		})
	}

	sum := sha256.Sum256([]byte(r.origin))
	if _, err := os.Stat(filepath.Join(m.Dir, hex.EncodeToString(sum[:])[:16]+".git", "HEAD")); err != nil {
		t.Errorf("mirror not at Dir/<sha256(url)[:16]>.git: %v", err)
	}
	if entries, _ := os.ReadDir(m.Dir); len(entries) != 1 {
		t.Errorf("mirrors dir holds %d entries, want 1 (no leftovers)", len(entries))
	}

	t.Run("missing ref", func(t *testing.T) {
		_, err := m.Resolve(ctx, r.origin, "mian", "")
		if !errors.Is(err, ErrRefNotFound) {
			t.Fatalf("err = %v, want ErrRefNotFound", err)
		}
		for _, s := range []string{`"mian"`, "main", "feature/x", r.origin} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	})
	t.Run("missing pinned commit", func(t *testing.T) {
		missing := strings.Repeat("ab", 20)
		_, err := m.Resolve(ctx, r.origin, "main", missing)
		if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("err = %v, want ErrCommitNotFound naming the commit", err)
		}
	})
	t.Run("pinned tree is not a commit", func(t *testing.T) {
		tree := git(t, r.work, "rev-parse", "HEAD^{tree}")
		if _, err := m.Resolve(ctx, r.origin, "", tree); !errors.Is(err, ErrCommitNotFound) {
			t.Fatalf("err = %v, want ErrCommitNotFound", err)
		}
	})
}

func TestResolveInvalid(t *testing.T) {
	gitEnvForTest(t)
	m := newMirrors(t)
	ok := "/some/repo"
	tests := []struct{ name, repo, ref, pinned string }{
		{"empty repo", "", "main", ""},
		{"repo option", "--upload-pack=touch /tmp/pwned", "main", ""},
		{"repo newline", "/x\n/y", "main", ""},
		{"empty ref", ok, "", ""},
		{"ref option", ok, "--output=/tmp/x", ""},
		{"ref dotdot", ok, "main..dev", ""},
		{"ref space", ok, "my branch", ""},
		{"ref control", ok, "main\x00", ""},
		{"ref tab", ok, "ma\tin", ""},
		{"ref colon", ok, "a:b", ""},
		{"ref reflog", ok, "main@{1}", ""},
		{"ref lock", ok, "main.lock", ""},
		{"ref dot component", ok, "a/.b", ""},
		{"ref trailing slash", ok, "a/", ""},
		{"short pinned", ok, "", "abc123"},
		{"upper-case pinned", ok, "", strings.Repeat("AB", 20)},
		{"pinned option", ok, "", "-" + strings.Repeat("a", 39)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Resolve(context.Background(), tt.repo, tt.ref, tt.pinned)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := os.Stat(m.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("invalid input created the mirrors directory (err %v)", err)
	}
}

func TestResolveUnreachable(t *testing.T) {
	gitEnvForTest(t)
	ctx := testCtx(t)
	m := newMirrors(t)
	missing := filepath.Join(t.TempDir(), "nope.git")
	_, err := m.Resolve(ctx, missing, "main", "")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	for _, s := range []string{missing, "does not appear to be a git repository"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q (git's stderr)", err, s)
		}
	}
	if entries, _ := os.ReadDir(m.Dir); len(entries) != 0 {
		t.Errorf("a failed first fetch left %d entries in the mirrors dir", len(entries))
	}

	// A password in the URL does not leak into the error.
	_, err = m.Resolve(ctx, "https://user:s3cr3t-token@127.0.0.1:1/x.git", "main", "")
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-token") {
		t.Errorf("error leaks the password: %v", err)
	}
	t.Log(err)
}

func TestResolveAfterPush(t *testing.T) {
	gitEnvForTest(t)
	ctx := testCtx(t)
	r := newRepo(t)
	c1 := r.commit("one", map[string]string{"a": "1"})
	m := newMirrors(t)
	if got, err := m.Resolve(ctx, r.origin, "main", ""); err != nil || got != c1 {
		t.Fatalf("Resolve = %s, %v; want %s", got, err, c1)
	}
	c2 := r.commit("two", map[string]string{"a": "2"})
	if got, err := m.Resolve(ctx, r.origin, "main", ""); err != nil || got != c2 {
		t.Fatalf("after push: Resolve = %s, %v; want %s", got, err, c2)
	}
	// A force-push back to c1 is followed, and a deleted branch is pruned.
	git(t, r.work, "push", "-q", "origin", "-f", c1+":refs/heads/main")
	git(t, r.work, "push", "-q", "origin", c2+":refs/heads/gone")
	if got, err := m.Resolve(ctx, r.origin, "gone", ""); err != nil || got != c2 {
		t.Fatalf("Resolve(gone) = %s, %v; want %s", got, err, c2)
	}
	if got, err := m.Resolve(ctx, r.origin, "main", ""); err != nil || got != c1 {
		t.Fatalf("after force-push: Resolve = %s, %v; want %s", got, err, c1)
	}
	git(t, r.work, "push", "-q", "origin", ":refs/heads/gone")
	if _, err := m.Resolve(ctx, r.origin, "gone", ""); !errors.Is(err, ErrRefNotFound) {
		t.Fatalf("deleted branch: err = %v, want ErrRefNotFound", err)
	}
}

func TestResolveConcurrent(t *testing.T) {
	gitEnvForTest(t)
	ctx := testCtx(t)
	r := newRepo(t)
	c1 := r.commit("one", map[string]string{"a": "1"})
	m := newMirrors(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			got, err := m.Resolve(ctx, r.origin, "main", "")
			if err == nil && got != c1 {
				err = errors.New("got " + got)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
}

func TestResolveWaitsForLockWithContext(t *testing.T) {
	gitEnvForTest(t)
	r := newRepo(t)
	r.commit("one", map[string]string{"a": "1"})
	m := newMirrors(t)
	dir, err := m.mirrorDir(r.origin)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := m.lock(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := m.Resolve(ctx, r.origin, "main", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded while the mirror is locked", err)
	}
	unlock()
	if _, err := m.Resolve(testCtx(t), r.origin, "main", ""); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRefAccepts(t *testing.T) {
	for _, ref := range []string{"main", "v1.2.3", "feature/new-ui", "release-2024_01", "a@b", "refs/tags/v1"} {
		if err := checkRef(ref); err != nil {
			t.Errorf("checkRef(%q) = %v", ref, err)
		}
	}
}

// countHandler counts log records with a given message.
type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// Resolves of one repository waiting for each other share fetches: a
// fetch that started after a Resolve was called serves it too.
func TestResolveSharesFetches(t *testing.T) {
	gitEnvForTest(t)
	ctx := testCtx(t)
	r := newRepo(t)
	c1 := r.commit("one", map[string]string{"a": "1"})
	m := newMirrors(t)
	var fetches atomic.Int64
	m.Logger = slog.New(countHandler{msg: "fetched repository", n: &fetches})
	if _, err := m.Resolve(ctx, r.origin, "main", ""); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if got, err := m.Resolve(ctx, r.origin, "main", ""); err != nil || got != c1 {
				t.Errorf("Resolve = %s, %v", got, err)
			}
		})
	}
	wg.Wait()
	if f := fetches.Load(); f < 1 || f >= n {
		t.Fatalf("%d concurrent resolves fetched %d times; want at least once and fewer than %d", n, f, n)
	}
	t.Logf("%d concurrent resolves, %d fetches", n, fetches.Load())
}
