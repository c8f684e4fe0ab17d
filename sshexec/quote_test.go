package sshexec

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"plain", "plain"},
		{"/var/lib/bakery/apps/hello", "/var/lib/bakery/apps/hello"},
		{"a-b_c.d,e:f@g%h+i", "a-b_c.d,e:f@g%h+i"},
		{"two words", "'two words'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"$(id)", "'$(id)'"},
		{"`id`", "'`id`'"},
		{"a=b", "'a=b'"},
		{"~root", "'~root'"},
		{"line\nbreak", "'line\nbreak'"},
		{"*", "'*'"},
		{"héllo", "'héllo'"},
	} {
		got, err := Quote(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Quote(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := Quote("a\x00b"); !errors.Is(err, ErrNUL) {
		t.Errorf("NUL: got %v, want ErrNUL", err)
	}
}

// shellEcho makes /bin/sh print the word q.
func shellEcho(t testing.TB, q string) string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", "printf %s "+q).Output()
	if err != nil {
		t.Fatalf("sh -c 'printf %%s %s': %v", q, err)
	}
	return string(out)
}

func TestQuoteRoundTrip(t *testing.T) {
	inputs := []string{"", "x", "it's \"quoted\" \\ $HOME $(id) `id` ${x:-y} !event", "\n\t\r ", "-n", "--", "a'b'c''", "\x01\x7f\xff\xfe", "*?[a]{b,c}", "#comment", ";&|<>()"}
	for _, in := range inputs {
		q, err := Quote(in)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(in, "-") {
			continue // printf would take it as an option; see the fuzz target
		}
		if got := shellEcho(t, q); got != in {
			t.Errorf("sh printed %q for Quote(%q) = %s", got, in, q)
		}
	}
}

// FuzzQuote proves that any string without NUL survives quoting: /bin/sh
// prints exactly the original bytes. Strings with NUL are rejected.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a b", "'", "$(x)", "`y`", "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Quote(s)
		if strings.IndexByte(s, 0) >= 0 {
			if !errors.Is(err, ErrNUL) {
				t.Fatalf("Quote(%q) = %q, %v; want ErrNUL", s, q, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		// "x" keeps a leading "-" from being read as an option.
		if got := shellEcho(t, "x"+q); got != "x"+s {
			t.Fatalf("sh printed %q for Quote(%q) = %s", got, s, q)
		}
	})
}
