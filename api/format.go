package api

import "strconv"

// HumanBytes formats n bytes in binary (IEC) units with one decimal and a
// space before the unit: "512 B", "1.5 KiB", "12.0 MiB". The web UI and the
// control loop's status messages use it.
func HumanBytes(n int64) string {
	v, unit := scaleBytes(n)
	if unit == "B" {
		return strconv.FormatInt(n, 10) + " B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}

// HumanBytesCompact formats n bytes like HumanBytes for narrow table
// columns: no space before the unit, and no decimal from 10 up: "512B",
// "1.5KiB", "12MiB". The CLI uses it.
func HumanBytesCompact(n int64) string {
	v, unit := scaleBytes(n)
	switch {
	case unit == "B":
		return strconv.FormatInt(n, 10) + "B"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64) + unit
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + unit
}

// ShortCommit abbreviates a commit id to its first 12 characters (shorter
// strings are returned as they are), as the control loop's messages and
// events show commits.
func ShortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// IsCommitID reports whether s is a full SHA-1 commit id: 40 lower-case
// hex digits (what the control loop resolves refs to and sends to nodes).
func IsCommitID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// scaleBytes returns n in the largest binary unit (KiB … EiB) in which it is
// at least 1, or n itself and "B" below 1 KiB (negative n included).
func scaleBytes(n int64) (float64, string) {
	const unit = 1024
	if n < unit {
		return float64(n), "B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return float64(n) / float64(div), string("KMGTPE"[exp]) + "iB"
}
