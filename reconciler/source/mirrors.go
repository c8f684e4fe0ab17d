package source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"bakery.dev/bakery/api"
)

// Errors of Resolve and Bundle, for errors.Is. The returned errors wrap
// them and add the details (URL, ref, git's own message).
var (
	// ErrUnreachable: the repository could not be fetched (no route, no
	// such repository, authentication failed, timeout, ...).
	ErrUnreachable = errors.New("source: repository unreachable")
	// ErrRefNotFound: the repository has no branch or tag of that name.
	ErrRefNotFound = errors.New("source: ref not found")
	// ErrCommitNotFound: the commit is not in the mirror (not pushed, or
	// Bundle called before Resolve).
	ErrCommitNotFound = errors.New("source: commit not found")
	// ErrUpToDate is returned by Bundle when the node already has every
	// object of the commit: there is nothing to send, and the node can
	// check the commit out directly (nodescript.Checkout).
	ErrUpToDate = errors.New("source: node already has the commit")
)

// DefaultGitTimeout bounds each git command when Mirrors.GitTimeout is 0.
const DefaultGitTimeout = 2 * time.Minute

// Mirrors is a cache of bare mirrors of git repositories on the control
// plane, one per repository URL, at Dir/<first 16 hex digits of
// sha256(url)>.git. Mirrors hold the branches and tags of the remote
// (pruned on every fetch), plus refs/bakery/<commit> for every commit ever
// bundled, which keeps deployed commits (for rollbacks) even after they
// disappear from the remote's branches.
//
// The zero value with Dir set is ready to use; a Mirrors must not be copied
// after first use. Git commands on one mirror are serialised; different
// repositories proceed in parallel. Serialisation is per Mirrors value:
// two processes must not share one Dir.
type Mirrors struct {
	Dir        string        // where the mirrors live; created on first use
	Logger     *slog.Logger  // nil: slog.Default()
	GitTimeout time.Duration // per git command; 0: DefaultGitTimeout

	mu    sync.Mutex
	locks map[string]chan struct{} // by mirror directory; a 1-slot semaphore each
	// fetched holds, by mirror directory, when the last successful fetch
	// started: a Resolve asked for before that needs no fetch of its own.
	fetched map[string]time.Time
}

// fetchSince fetches unless a fetch that started at or after asked has
// already succeeded: many deployments resolving one repository at once
// share fetches, and each still sees the remote as it was at some moment
// after it asked. The mirror is locked.
func (mr *mirror) fetchSince(ctx context.Context, asked time.Time) error {
	m := mr.m
	m.mu.Lock()
	last, ok := m.fetched[mr.dir]
	m.mu.Unlock()
	if ok && !last.Before(asked) {
		return nil
	}
	start := time.Now()
	if err := mr.fetch(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	if m.fetched == nil {
		m.fetched = map[string]time.Time{}
	}
	m.fetched[mr.dir] = start
	m.mu.Unlock()
	return nil
}

func (m *Mirrors) log() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

func (m *Mirrors) timeout() time.Duration {
	if m.GitTimeout > 0 {
		return m.GitTimeout
	}
	return DefaultGitTimeout
}

// mirrorDir returns the absolute path of repo's mirror.
func (m *Mirrors) mirrorDir(repo string) (string, error) {
	if m.Dir == "" {
		return "", errors.New("source: Mirrors.Dir is not set")
	}
	dir, err := filepath.Abs(m.Dir)
	if err != nil {
		return "", fmt.Errorf("source: mirrors directory: %w", err)
	}
	sum := sha256.Sum256([]byte(repo))
	return filepath.Join(dir, hex.EncodeToString(sum[:])[:16]+".git"), nil
}

// lock serialises all git commands on one mirror. Waiting gives up when
// ctx is done.
func (m *Mirrors) lock(ctx context.Context, dir string) (unlock func(), err error) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = make(map[string]chan struct{})
	}
	sem := m.locks[dir]
	if sem == nil {
		sem = make(chan struct{}, 1)
		m.locks[dir] = sem
	}
	m.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// mirror is one locked mirror, for the duration of a Resolve or Bundle.
type mirror struct {
	m      *Mirrors
	repo   string // as given: the URL git fetches
	dir    string
	secret string
}

func (mr *mirror) git(ctx context.Context, args ...string) ([]byte, error) {
	return runGit(ctx, mr.m.timeout(), mr.secret, nil, append([]string{"--git-dir=" + mr.dir}, args...)...)
}

// fetch brings the mirror up to date with one git fetch, creating it first
// if needed. A new mirror is built in a temporary directory and renamed
// into place, so an existing mirror directory is always a complete one.
func (mr *mirror) fetch(ctx context.Context) error {
	_, err := os.Stat(filepath.Join(mr.dir, "HEAD"))
	if err == nil {
		start := time.Now()
		if err := mr.fetchInto(ctx, mr.dir); err != nil {
			return err
		}
		mr.m.log().Debug("fetched repository", "repo", redact(mr.repo), "mirror", mr.dir, "took", time.Since(start))
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("source: mirror of %s: %w", redact(mr.repo), err)
	}
	parent := filepath.Dir(mr.dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("source: mirrors directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".new-"+filepath.Base(mr.dir)+"-")
	if err != nil {
		return fmt.Errorf("source: mirrors directory: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	start := time.Now()
	if _, err := runGit(ctx, mr.m.timeout(), "", nil, "-c", "init.defaultBranch=main", "init", "--bare", "-q", "--", tmp); err != nil {
		return fmt.Errorf("source: creating mirror of %s: %w", redact(mr.repo), err)
	}
	if err := mr.fetchInto(ctx, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, mr.dir); err != nil {
		return fmt.Errorf("source: mirror of %s: %w", redact(mr.repo), err)
	}
	mr.m.log().Info("mirrored repository", "repo", redact(mr.repo), "mirror", mr.dir, "took", time.Since(start))
	return nil
}

// fetchInto fetches the remote's branches and tags into the bare repository
// dir, pruning deleted ones and accepting forced updates. Refs outside
// refs/heads and refs/tags (refs/bakery/*) are left alone, and the remote's
// other refs (refs/pull/* and the like) are not fetched.
func (mr *mirror) fetchInto(ctx context.Context, dir string) error {
	_, err := runGit(ctx, mr.m.timeout(), mr.secret, nil,
		"--git-dir="+dir, "fetch", "--quiet", "--prune", "--force", "--",
		mr.repo, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("source: fetching %s: %w", redact(mr.repo), err)
		}
		return fmt.Errorf("%w: fetching %s: %w", ErrUnreachable, redact(mr.repo), err)
	}
	return nil
}

// commitOf returns the commit rev peels to, or "" if there is none.
func (mr *mirror) commitOf(ctx context.Context, rev string) (string, error) {
	out, err := mr.git(ctx, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return "", nil
		}
		return "", fmt.Errorf("source: mirror of %s: %w", redact(mr.repo), err)
	}
	c := strings.TrimSpace(string(out))
	if !api.IsCommitID(c) {
		return "", fmt.Errorf("source: mirror of %s: git rev-parse %s printed %q", redact(mr.repo), rev, c)
	}
	return c, nil
}

// open validates repo, locks its mirror and returns it.
func (m *Mirrors) open(ctx context.Context, repo string) (*mirror, func(), error) {
	if err := checkRepo(repo); err != nil {
		return nil, nil, err
	}
	dir, err := m.mirrorDir(repo)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := m.lock(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	return &mirror{m: m, repo: repo, dir: dir, secret: secretOf(repo)}, unlock, nil
}

// Resolve fetches repo into its mirror (one git fetch per call; a clone on
// first use) and returns the full id of the commit to deploy. If pinned is
// not empty it must be a full commit id that exists in the repository, and
// is returned as is (ref is then ignored). Otherwise ref is resolved as a
// branch, else as a tag (annotated tags are peeled to their commit); a
// fully qualified "refs/heads/X" or "refs/tags/X" is taken as is.
//
// Errors wrap ErrInvalid, ErrUnreachable, ErrRefNotFound (the message lists
// some branches) or ErrCommitNotFound, and include git's message.
func (m *Mirrors) Resolve(ctx context.Context, repo, ref, pinned string) (commit string, err error) {
	commit, _, err = m.resolve(ctx, repo, ref, pinned, false)
	return commit, err
}

// ResolveWithHead is Resolve of a pinned commit that also returns the
// commit ref names now, after the same one fetch ("" when ref names none:
// the pinned commit is what counts).
func (m *Mirrors) ResolveWithHead(ctx context.Context, repo, ref, pinned string) (commit, head string, err error) {
	return m.resolve(ctx, repo, ref, pinned, true)
}

func (m *Mirrors) resolve(ctx context.Context, repo, ref, pinned string, withHead bool) (commit, head string, err error) {
	if pinned != "" {
		if err := checkCommit("pinned commit", pinned); err != nil {
			return "", "", err
		}
	} else if err := checkRef(ref); err != nil {
		return "", "", err
	}
	asked := time.Now()
	mr, unlock, err := m.open(ctx, repo)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if err := mr.fetchSince(ctx, asked); err != nil {
		return "", "", err
	}
	if pinned == "" {
		commit, err = mr.refCommit(ctx, ref)
		return commit, commit, err
	}
	c, err := mr.commitOf(ctx, pinned)
	if err != nil {
		return "", "", err
	}
	if c == "" {
		return "", "", fmt.Errorf("%w: pinned commit %s is not in %s", ErrCommitNotFound, pinned, redact(repo))
	}
	if withHead && checkRef(ref) == nil {
		head, _ = mr.refCommit(ctx, ref)
	}
	return c, head, nil
}

// refCommit returns the commit ref names in the mirror: a branch, else a
// tag; a fully qualified "refs/heads/X" or "refs/tags/X" as is.
func (mr *mirror) refCommit(ctx context.Context, ref string) (string, error) {
	candidates := []string{"refs/heads/" + ref, "refs/tags/" + ref}
	if strings.HasPrefix(ref, "refs/heads/") || strings.HasPrefix(ref, "refs/tags/") {
		candidates = []string{ref}
	}
	for _, full := range candidates {
		c, err := mr.commitOf(ctx, full)
		if err != nil {
			return "", err
		}
		if c != "" {
			return c, nil
		}
	}
	return "", mr.refNotFound(ctx, ref)
}

// refNotFound builds the error for a missing ref, naming a few branches
// (most recently committed first) to help spot a typo.
func (mr *mirror) refNotFound(ctx context.Context, ref string) error {
	const show = 5
	msg := fmt.Sprintf("%s: no branch or tag %q in %s", ErrRefNotFound.Error(), ref, redact(mr.repo))
	out, err := mr.git(ctx, "for-each-ref", "--sort=-committerdate", "--format=%(refname)", "refs/heads/")
	if err == nil {
		var names []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			names = append(names, strings.TrimPrefix(sc.Text(), "refs/heads/"))
		}
		switch {
		case len(names) == 0:
			msg += " (it has no branches)"
		case len(names) <= show:
			msg += " (branches: " + strings.Join(names, ", ") + ")"
		default:
			msg += fmt.Sprintf(" (branches: %s and %d more)", strings.Join(names[:show], ", "), len(names)-show)
		}
	}
	return &wrapped{msg: msg, err: ErrRefNotFound}
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// Bundle writes a git bundle, to a temporary file in Dir, from which a node
// can fetch commit as refs/bakery/<commit> (see nodescript.Fetch). The
// commit must be in repo's mirror (Resolve first); Bundle does not fetch.
// haves are commits the node already has (nodescript.Haves, ParseHaves):
// those the mirror knows are left out of the bundle with everything they
// reach, unknown ones are ignored. If the node already has every object of
// commit, Bundle returns ErrUpToDate and no file. Otherwise the caller
// copies the file at path (size bytes) to the node and calls cleanup to
// remove it, once done with it.
//
// The mirror keeps refs/bakery/<commit>, so a bundled commit is never
// garbage-collected from the mirror, even once gone from every branch.
func (m *Mirrors) Bundle(ctx context.Context, repo, commit string, haves []string) (path string, size int64, cleanup func(), err error) {
	if err := checkCommit("commit", commit); err != nil {
		return "", 0, nil, err
	}
	for _, h := range haves {
		if err := checkCommit("have", h); err != nil {
			return "", 0, nil, err
		}
	}
	mr, unlock, err := m.open(ctx, repo)
	if err != nil {
		return "", 0, nil, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(mr.dir, "HEAD")); err != nil {
		return "", 0, nil, fmt.Errorf("%w: %s has not been mirrored yet (Resolve first)", ErrCommitNotFound, redact(repo))
	}
	if c, err := mr.commitOf(ctx, commit); err != nil {
		return "", 0, nil, err
	} else if c == "" {
		return "", 0, nil, fmt.Errorf("%w: %s is not in the mirror of %s (Resolve first)", ErrCommitNotFound, commit, redact(repo))
	}
	known, err := mr.knownCommits(ctx, haves)
	if err != nil {
		return "", 0, nil, err
	}
	if len(known) > 0 {
		out, err := mr.git(ctx, append([]string{"rev-list", "-n", "1", commit, "--not"}, known...)...)
		if err != nil {
			return "", 0, nil, fmt.Errorf("source: mirror of %s: %w", redact(repo), err)
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return "", 0, nil, fmt.Errorf("%w: %s", ErrUpToDate, commit)
		}
	}
	tip := "refs/bakery/" + commit
	if _, err := mr.git(ctx, "update-ref", tip, commit); err != nil {
		return "", 0, nil, fmt.Errorf("source: mirror of %s: %w", redact(repo), err)
	}
	f, err := os.CreateTemp(filepath.Dir(mr.dir), ".bundle-"+commit[:12]+"-*.bundle")
	if err != nil {
		return "", 0, nil, fmt.Errorf("source: bundle: %w", err)
	}
	path = f.Name()
	f.Close()
	cleanup = func() { os.Remove(path) }
	args := []string{"bundle", "create", path, tip}
	if len(known) > 0 {
		args = append(append(args, "--not"), known...)
	}
	if _, err := mr.git(ctx, args...); err != nil {
		cleanup()
		return "", 0, nil, fmt.Errorf("source: bundling %s of %s: %w", commit, redact(repo), err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		cleanup()
		return "", 0, nil, fmt.Errorf("source: bundle: %w", err)
	}
	m.log().Debug("bundled commit", "repo", redact(repo), "commit", commit, "haves", len(known), "bytes", fi.Size())
	return path, fi.Size(), cleanup, nil
}

// knownCommits returns the haves that are commits in the mirror, without
// duplicates, using one git cat-file for all of them.
func (mr *mirror) knownCommits(ctx context.Context, haves []string) ([]string, error) {
	if len(haves) == 0 {
		return nil, nil
	}
	var in bytes.Buffer
	seen := make(map[string]bool)
	var uniq []string
	for _, h := range haves {
		if !seen[h] {
			seen[h] = true
			uniq = append(uniq, h)
			in.WriteString(h + "^{commit}\n")
		}
	}
	out, err := runGit(ctx, mr.m.timeout(), mr.secret, &in, "--git-dir="+mr.dir, "cat-file", "--batch-check=%(objectname)")
	if err != nil {
		return nil, fmt.Errorf("source: mirror of %s: %w", redact(mr.repo), err)
	}
	found := make(map[string]bool)
	for _, l := range strings.Split(string(out), "\n") {
		if api.IsCommitID(l) {
			found[l] = true
		}
	}
	var known []string
	for _, h := range uniq {
		if found[h] {
			known = append(known, h)
		}
	}
	return known, nil
}
