package store

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxRolloutIDLen is the longest rollout ID a store accepts.
const MaxRolloutIDLen = 128

var rolloutID = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// CheckRolloutID returns an ErrInvalid error unless id is a valid rollout
// ID: 1 to 128 lower-case letters, digits and '-', starting and ending with
// a letter or digit (a DNS-1123 label, only longer), such as
// "hello-3-1a2b3c4d". Such an ID can never become a path ("/", "..") or
// escape a query. Implementations of Rollouts call it before touching
// storage.
func CheckRolloutID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: rollout id is required", ErrInvalid)
	case len(id) > MaxRolloutIDLen:
		return fmt.Errorf("%w: rollout id must be at most %d characters", ErrInvalid, MaxRolloutIDLen)
	case !rolloutID.MatchString(id):
		return fmt.Errorf("%w: rollout id %q: want lower-case letters, digits and '-', starting and ending with a letter or digit", ErrInvalid, id)
	}
	return nil
}

// ValidText returns s with every byte that is not part of valid UTF-8, and
// every NUL, replaced by U+FFFD (one per byte, as encoding/json does). Log
// lines carry raw process output, which may be neither; stores keep what
// ValidText returns instead of refusing the line, so the text of log lines
// and the strings of rollout records read back as valid UTF-8 without NUL.
func ValidText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == 0 || (r == utf8.RuneError && n == 1) {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// ReplaceJSONNul replaces each \u0000 escape in JSON text (as
// encoding/json writes NUL) by \ufffd. JSON from encoding/json holds
// invalid UTF-8 as U+FFFD already, byte by byte; after ReplaceJSONNul its
// strings are what ValidText returns, which is what stores keep of a
// rollout record (PostgreSQL's JSONB refuses \u0000). b is returned
// as is when it holds no \u0000, else a new slice.
func ReplaceJSONNul(b []byte) []byte {
	const nul, repl = `\u0000`, `\ufffd`
	if !bytes.Contains(b, []byte(nul)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		// In JSON a backslash only occurs in strings, always starting an
		// escape: stepping over each escape as a whole never mistakes an
		// escaped backslash followed by "u0000" for a NUL.
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if bytes.HasPrefix(b[i:], []byte(nul)) {
			out = append(out, repl...)
			i += len(nul) - 1
			continue
		}
		out = append(out, b[i], b[i+1]) // any other escape: \\, \", \n, \u00e9 …
		i++
	}
	return out
}
