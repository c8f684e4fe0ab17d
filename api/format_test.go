package api

import (
	"math"
	"testing"
)

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n              int64
		human, compact string
	}{
		{-5, "-5 B", "-5B"},
		{0, "0 B", "0B"},
		{1, "1 B", "1B"},
		{1023, "1023 B", "1023B"},
		{1024, "1.0 KiB", "1.0KiB"},
		{1536, "1.5 KiB", "1.5KiB"},
		{10 << 10, "10.0 KiB", "10KiB"},
		{1047552, "1023.0 KiB", "1023KiB"},
		{1<<20 - 1, "1024.0 KiB", "1024KiB"}, // rounds up without changing unit
		{1 << 20, "1.0 MiB", "1.0MiB"},
		{12 << 20, "12.0 MiB", "12MiB"},
		{3 << 30, "3.0 GiB", "3.0GiB"},
		{20 << 30, "20.0 GiB", "20GiB"},
		{5 << 40, "5.0 TiB", "5.0TiB"},
		{7 << 50, "7.0 PiB", "7.0PiB"},
		{math.MaxInt64, "8.0 EiB", "8.0EiB"},
	} {
		if got := HumanBytes(tc.n); got != tc.human {
			t.Errorf("HumanBytes(%d) = %q, want %q", tc.n, got, tc.human)
		}
		if got := HumanBytesCompact(tc.n); got != tc.compact {
			t.Errorf("HumanBytesCompact(%d) = %q, want %q", tc.n, got, tc.compact)
		}
	}
}

func TestShortCommit(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "abc", "0123456789ab": "0123456789ab", "0123456789abcdef0123": "0123456789ab"} {
		if got := ShortCommit(in); got != want {
			t.Errorf("ShortCommit(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsCommitID(t *testing.T) {
	good := "0123456789abcdef0123456789abcdef01234567"
	for s, want := range map[string]bool{good: true, good[:39]: false, good + "0": false,
		"0123456789ABCDEF0123456789abcdef01234567": false, "--upload-pack=x-------------------------": false, "": false} {
		if got := IsCommitID(s); got != want {
			t.Errorf("IsCommitID(%q) = %v, want %v", s, got, want)
		}
	}
}
