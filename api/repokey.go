package api

import (
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

var scpLike = regexp.MustCompile(`^(?:[^@/:]+@)?([^/:]+):(.+)$`)

// RepoKey returns an identity of a repository URL or path under which
// the ways of writing one repository agree, so that a push webhook naming
// a repository can be matched to the sources that fetch it:
// "https://github.com/Owner/App.git", "git@github.com:owner/app" and
// "ssh://git@github.com/owner/app/" all give "github.com/owner/app"; a
// local path (or file:// URL) gives the cleaned path without a trailing
// ".git". User names, passwords, ports and the scheme are dropped; host
// and path of remote URLs are compared case-insensitively.
func RepoKey(repo string) string {
	repo = strings.TrimSpace(repo)
	if repo == "" {
		return ""
	}
	trim := func(p string) string {
		p = strings.TrimRight(p, "/")
		p = strings.TrimSuffix(p, ".git")
		return strings.TrimRight(p, "/")
	}
	if strings.Contains(repo, "://") {
		u, err := url.Parse(repo)
		if err != nil {
			return trim(repo)
		}
		if u.Scheme == "file" {
			return trim(filepath.Clean(u.Path))
		}
		return strings.ToLower(u.Hostname() + "/" + strings.TrimLeft(trim(u.Path), "/"))
	}
	if !strings.HasPrefix(repo, "/") && !strings.HasPrefix(repo, ".") {
		if m := scpLike.FindStringSubmatch(repo); m != nil {
			return strings.ToLower(m[1] + "/" + strings.TrimLeft(trim(m[2]), "/"))
		}
	}
	return trim(filepath.Clean(repo))
}
