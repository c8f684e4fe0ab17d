package source

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"bakery.dev/bakery/api"
)

// TreeFile is one file of a commit's tree.
type TreeFile struct {
	// Path is relative to the repository root, with '/' separators.
	Path string
	Data []byte
}

// Files returns the regular files under dir in commit of repo's mirror
// for which match returns true, sorted by path (symlinks and submodules
// are skipped, never followed). dir is a clean
// relative path ("." for the whole tree). The commit must be in the
// mirror (Resolve first); Files does not fetch. Files larger than
// maxFile, or more than maxTotal bytes in all, are an error, detected
// before they are read.
func (m *Mirrors) Files(ctx context.Context, repo, commit, dir string, match func(p string) bool, maxFile, maxTotal int64) ([]TreeFile, error) {
	if err := checkCommit("commit", commit); err != nil {
		return nil, err
	}
	if dir == "" || strings.HasPrefix(dir, "-") || strings.HasPrefix(dir, "/") || hasControl(dir) || path.Clean(dir) != dir ||
		dir == ".." || strings.HasPrefix(dir, "../") {
		return nil, invalidf("path %q is not a clean relative path", dir)
	}
	mr, unlock, err := m.open(ctx, repo)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := mr.commitOf(ctx, commit)
	if err != nil {
		return nil, err
	}
	if c == "" {
		return nil, fmt.Errorf("%w: commit %s is not in the mirror of %s", ErrCommitNotFound, commit, redact(repo))
	}
	args := []string{"ls-tree", "-r", "-l", "-z", "--full-tree", commit}
	if dir != "." {
		args = append(args, "--", dir)
	}
	out, err := mr.git(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("source: list files of %s at %s: %w", redact(repo), api.ShortCommit(commit), err)
	}
	want, found, err := listTree(out, dir, match, maxFile, maxTotal)
	if err != nil {
		return nil, err
	}
	if !found && dir != "." {
		return nil, fmt.Errorf("%w: no path %q in %s at %s", ErrRefNotFound, dir, redact(repo), api.ShortCommit(commit))
	}
	if len(want) == 0 {
		return nil, nil
	}
	var in bytes.Buffer
	for _, e := range want {
		in.WriteString(e.oid + "\n")
	}
	out, err = runGit(ctx, m.timeout(), mr.secret, &in, "--git-dir="+mr.dir, "cat-file", "--batch")
	if err != nil {
		return nil, fmt.Errorf("source: read files of %s at %s: %w", redact(repo), api.ShortCommit(commit), err)
	}
	return readBlobs(out, want, maxFile)
}

// treeEntry is a blob to read: its object id and path.
type treeEntry struct{ oid, path string }

// listTree parses "git ls-tree -r -l -z" output: the regular files match
// accepts, within the size limits; found reports whether the tree listed
// anything at all.
func listTree(out []byte, dir string, match func(p string) bool, maxFile, maxTotal int64) (want []treeEntry, found bool, err error) {
	var total int64
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		// "<mode> SP <type> SP <object> SP+ <size> TAB <path>"
		meta, p, ok := strings.Cut(string(rec), "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 4 {
			return nil, false, fmt.Errorf("source: git ls-tree printed %q", rec)
		}
		found = true
		if f[1] != "blob" || f[0] == "120000" || !match(p) {
			continue // submodules, symlinks, other files
		}
		size, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("source: git ls-tree printed %q", rec)
		}
		if size > maxFile {
			return nil, false, fmt.Errorf("%s: %d bytes, more than the %d allowed", p, size, maxFile)
		}
		if total += size; total > maxTotal {
			return nil, false, fmt.Errorf("the manifests under %q hold more than %d bytes", dir, maxTotal)
		}
		want = append(want, treeEntry{f[2], p})
	}
	return want, found, nil
}

// readBlobs parses "git cat-file --batch" output for the entries asked
// for, in order.
func readBlobs(out []byte, want []treeEntry, maxFile int64) ([]TreeFile, error) {
	r := bufio.NewReader(bytes.NewReader(out))
	files := make([]TreeFile, 0, len(want))
	for _, e := range want {
		hdr, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("source: git cat-file: %w", err)
		}
		f := strings.Fields(hdr)
		if len(f) != 3 || f[0] != e.oid || f[1] != "blob" {
			return nil, fmt.Errorf("source: git cat-file printed %q for %s", strings.TrimSpace(hdr), e.path)
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || n > maxFile {
			return nil, fmt.Errorf("source: git cat-file printed %q for %s", strings.TrimSpace(hdr), e.path)
		}
		data := make([]byte, n+1) // contents and a newline
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("source: git cat-file: %w", err)
		}
		files = append(files, TreeFile{Path: e.path, Data: data[:n]})
	}
	return files, nil
}
