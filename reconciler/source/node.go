package source

import (
	"fmt"
	"path"
	"strings"

	"bakery.dev/bakery/sshexec"
)

// The scripts below run on the node with /bin/sh. They need git (any
// version that reads bundles, i.e. all of them) and tar there, nothing
// else. Invalid arguments do not panic: the returned script prints what is
// wrong to stderr and exits with status 2 without touching anything.

// script collects the shell variable assignments that start a node script;
// every value goes through sshexec.Quote.
type script struct {
	name string
	b    strings.Builder
	err  error
}

func newScript(name string) *script {
	s := &script{name: name}
	s.b.WriteString("set -eu\n")
	return s
}

func (s *script) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// set assigns value to the shell variable name.
func (s *script) set(name, value string) {
	q, err := sshexec.Quote(value)
	if err != nil {
		s.fail(invalidf("%s %q: %v", name, value, err))
		return
	}
	fmt.Fprintf(&s.b, "%s=%s\n", name, q)
}

// setPath assigns a node path, cleaned, and made unmistakable for an
// option ("./-x" for "-x").
func (s *script) setPath(name, p string) {
	if p == "" {
		s.fail(invalidf("empty %s path", name))
		return
	}
	p = path.Clean(p)
	if strings.HasPrefix(p, "-") {
		p = "./" + p
	}
	s.set(name, p)
}

func (s *script) setCommit(c string) {
	if err := checkCommit("commit", c); err != nil {
		s.fail(err)
		return
	}
	s.set("commit", c)
}

// finish appends body, or returns a script that reports the first error.
func (s *script) finish(body string) string {
	if s.err != nil {
		// The message holds values only in %q form, so it has no NUL.
		msg, _ := sshexec.Quote(fmt.Sprintf("bakery: %s: %v", s.name, s.err))
		return "printf '%s\\n' " + msg + " >&2\nexit 2\n"
	}
	return s.b.String() + body
}

// NodeFetchScript returns a POSIX sh script, run on the node, that fetches
// commit from the bundle at bundlePath (made by Mirrors.Bundle and copied
// there) into the node's bare repository repoDir, as refs/bakery/<commit>,
// creating the repository if needed. It checks that the commit is then
// present and removes the bundle file whether or not the fetch worked. It
// is safe to run again (with a bundle).
func NodeFetchScript(repoDir, bundlePath, commit string) string {
	s := newScript("NodeFetchScript")
	s.setPath("repo", repoDir)
	s.setPath("bundle", bundlePath)
	s.setCommit(commit)
	return s.finish(`trap 'rm -f -- "$bundle"' EXIT
if [ ! -f "$repo/HEAD" ]; then
	mkdir -p -- "$repo"
	git -c init.defaultBranch=main init --bare -q -- "$repo"
fi
git --git-dir="$repo" fetch -q "$bundle" "refs/bakery/$commit:refs/bakery/$commit"
if ! git --git-dir="$repo" cat-file -e "$commit^{commit}"; then
	printf 'bakery: commit %s is not in %s after fetching %s\n' "$commit" "$repo" "$bundle" >&2
	exit 1
fi
`)
}

// NodeHavesScript returns a POSIX sh script, run on the node, that prints
// the commits under refs/bakery/ in the node's bare repository repoDir, one
// per line, and nothing if the repository does not exist. ParseHaves reads
// its output.
func NodeHavesScript(repoDir string) string {
	s := newScript("NodeHavesScript")
	s.setPath("repo", repoDir)
	return s.finish(`if [ -f "$repo/HEAD" ]; then
	git --git-dir="$repo" for-each-ref --format='%(objectname)' refs/bakery/
fi
`)
}

// NodeCheckoutScript returns a POSIX sh script, run on the node, that
// (re)creates releaseDir with the files of commit from the node's bare
// repository repoDir. The tree is extracted (git archive | tar) into a
// temporary directory next to releaseDir and renamed into place, so
// releaseDir is never half-written; an existing releaseDir, complete or
// not, is replaced (moved aside, then removed), and leftovers of an
// interrupted run are removed. Running it again gives the same result.
//
// The files are exactly the commit's tree: the tree's .gitattributes
// export-ignore and export-subst do not apply. Submodules are not included
// (git archive leaves them out). The script also keeps commit under
// refs/bakery/ in the node's repository, which covers a commit the node
// had only as an ancestor of another one (Bundle's ErrUpToDate).
//
// Do not run it for the release a running slot serves from: the files
// would be replaced under the running process.
func NodeCheckoutScript(repoDir, releaseDir, commit string) string {
	s := newScript("NodeCheckoutScript")
	s.setPath("repo", repoDir)
	s.setCommit(commit)
	if rel := path.Clean(releaseDir); releaseDir != "" && (rel == "/" || path.Base(rel) == "." || path.Base(rel) == "..") {
		s.fail(invalidf("release directory %q names no directory of its own", releaseDir))
	}
	s.setPath("release", releaseDir)
	if releaseDir != "" {
		s.setPath("parent", path.Dir(path.Clean(releaseDir)))
	}
	return s.finish(`if ! git --git-dir="$repo" cat-file -e "$commit^{commit}" 2>/dev/null; then
	printf 'bakery: commit %s is not in %s\n' "$commit" "$repo" >&2
	exit 1
fi
git --git-dir="$repo" update-ref "refs/bakery/$commit" "$commit"
# Attributes in the tree must not change what is checked out.
mkdir -p -- "$repo/info"
printf '%s\n' '* -export-ignore -export-subst' >"$repo/info/attributes"
mkdir -p -- "$parent"
rm -rf -- "$release".bakery-tmp.* "$release".bakery-old.*
tmp="$release.bakery-tmp.$$"
old="$release.bakery-old.$$"
trap 'rm -rf -- "$tmp"' EXIT
mkdir -- "$tmp" "$tmp/tree"
{ git --git-dir="$repo" archive --format=tar "$commit" || echo "$?" >"$tmp/archive-failed"; } | tar -x -f - -C "$tmp/tree"
if [ -e "$tmp/archive-failed" ]; then
	printf 'bakery: git archive %s failed\n' "$commit" >&2
	exit 1
fi
if [ -e "$release" ] || [ -L "$release" ]; then
	mv -- "$release" "$old"
fi
mv -- "$tmp/tree" "$release"
rm -rf -- "$old"
`)
}

// ParseHaves reads the output of NodeHavesScript: the commit ids, without
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
		if !isCommitID(l) {
			return nil, invalidf("node haves: %q is not a commit id", l)
		}
		seen[l] = true
		haves = append(haves, l)
	}
	return haves, nil
}
