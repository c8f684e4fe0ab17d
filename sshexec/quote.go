package sshexec

import (
	"errors"
	"strings"
)

// ErrNUL is returned by [Quote] for a string containing a NUL byte, which no
// shell word or environment value can hold.
var ErrNUL = errors.New("sshexec: string contains a NUL byte")

// Quote returns s as one POSIX shell word that evaluates to exactly s. It is
// the one quoting function of Bakery: every value that reaches a shell goes
// through it. Strings made only of letters, digits and "@%+:,./_-" are
// returned unchanged (a leading "-" is still an option to most commands);
// anything else is wrapped in single quotes, each single quote inside
// written as quote, backslash, quote, quote. The empty string becomes two
// single quotes. A NUL byte cannot be represented and is rejected with
// [ErrNUL]. Examples:
//
//	Quote("hello")     // hello
//	Quote("it's $HOME") // 'it'\''s $HOME'
func Quote(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", ErrNUL
	}
	if s == "" {
		return "''", nil
	}
	if isSafeWord(s) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			b.WriteString(`'\''`)
			continue
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String(), nil
}

func isSafeWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("@%+:,./_-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// mustQuote quotes strings already known to hold no NUL.
func mustQuote(s string) string {
	q, err := Quote(s)
	if err != nil {
		panic("sshexec: internal: " + err.Error())
	}
	return q
}
