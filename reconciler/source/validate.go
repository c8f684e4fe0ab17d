package source

import (
	"errors"
	"fmt"
	"strings"

	"bakery.dev/bakery/api"
)

// ErrInvalid is wrapped by every error about a malformed argument: a commit
// id that is not 40 lower-case hex digits, a repository URL or ref that git
// could read as an option, and so on. Retrying cannot help.
var ErrInvalid = errors.New("source: invalid argument")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

func checkCommit(what, s string) error {
	if !api.IsCommitID(s) {
		return invalidf("%s %q is not a full commit id (40 lower-case hex digits)", what, s)
	}
	return nil
}

func checkRepo(repo string) error {
	switch {
	case repo == "":
		return invalidf("empty repository URL")
	case strings.HasPrefix(repo, "-"):
		return invalidf("repository URL %q starts with '-'", redact(repo))
	case hasControl(repo):
		return invalidf("repository URL %q contains a control character", redact(repo))
	}
	return nil
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// checkRef enforces git's ref name rules (git-check-ref-format) on a short
// branch or tag name, and additionally rejects a leading '-'.
func checkRef(ref string) error {
	bad := func(why string) error { return invalidf("ref %q: %s", ref, why) }
	switch {
	case ref == "":
		return bad("empty")
	case strings.HasPrefix(ref, "-"):
		return bad("starts with '-'")
	case ref == "@":
		return bad(`"@" is not a ref name`)
	case strings.Contains(ref, ".."):
		return bad(`contains ".."`)
	case strings.Contains(ref, "@{"):
		return bad(`contains "@{"`)
	case strings.Contains(ref, "//"):
		return bad(`contains "//"`)
	case strings.HasPrefix(ref, "/"), strings.HasSuffix(ref, "/"):
		return bad("starts or ends with '/'")
	case strings.HasSuffix(ref, "."):
		return bad("ends with '.'")
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c <= ' ' || c == 0x7f {
			return bad("contains a space or control character")
		}
		if strings.IndexByte(`~^:?*[\`, c) >= 0 {
			return bad(fmt.Sprintf("contains %q", c))
		}
	}
	for _, comp := range strings.Split(ref, "/") {
		if strings.HasPrefix(comp, ".") {
			return bad("a component starts with '.'")
		}
		if strings.HasSuffix(comp, ".lock") {
			return bad(`a component ends with ".lock"`)
		}
	}
	return nil
}
