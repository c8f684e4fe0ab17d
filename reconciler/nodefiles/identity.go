package nodefiles

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"bakery.dev/bakery/api"
)

// AppsDataRoot holds each app's own writable directory. Unlike Root it is
// root-owned, so that the node's bakery-sudo helper can create and chown
// an app's directory there without following a symlink bakery-agent
// planted.
const AppsDataRoot = "/var/lib/bakery-apps"

// AppDataDir is the only directory an app may write to (its home, too):
// owned by AppUser, mode 0700.
func AppDataDir(app string) string { return path.Join(AppsDataRoot, app, "data") }

// maxUserName is the longest user name systemd accepts everywhere (utmp's
// limit, systemd's strict rule).
const maxUserName = 31

// AppUser is the system user an app, its builds and its tests run as:
// "bakery-app-APP", or, for names that would not fit 31 characters,
// "bakery-app-" + the app's first 11 characters + "-" + 8 hex digits of
// the SHA-256 of its name. The node's bakery-sudo helper derives the same
// name (app_user) and creates the user on first use.
func AppUser(app string) string {
	u := "bakery-app-" + app
	if len(u) <= maxUserName {
		return u
	}
	sum := sha256.Sum256([]byte(app))
	return "bakery-app-" + app[:11] + "-" + hex.EncodeToString(sum[:])[:8]
}

// The validation rules of node parameters that are not API fields. Each
// rule lives once on this side (here or in package api) and once on the
// node (the helper's check_* functions); scripts/testdata/privilege/
// params.json is run against both by scripts/helper_test.go.
var (
	releaseRE = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?(-[0-9a-f]{16})?$`)
)

// ValidateSlot accepts the two slot names (check_slot on the node).
func ValidateSlot(slot string) string {
	if slot != Blue && slot != Green {
		return fmt.Sprintf("%q is not a slot (blue or green)", slot)
	}
	return ""
}

// ValidateRelease accepts a release directory name: a commit id (40 or 64
// hex digits), optionally followed by "-" and a 16-hex-digit build hash
// (ReleaseID) (check_release on the node).
func ValidateRelease(release string) string {
	if !releaseRE.MatchString(release) {
		return fmt.Sprintf("%q is not a release id (COMMIT or COMMIT-BUILDHASH, lower-case hex)", release)
	}
	return ""
}

// MaxStopTimeout bounds TimeoutStopSec (a day).
const MaxStopTimeout = 86400

// ValidateStopTimeout accepts 1..MaxStopTimeout seconds (check_seconds on
// the node).
func ValidateStopTimeout(sec int) string {
	if sec < 1 || sec > MaxStopTimeout {
		return fmt.Sprintf("stop timeout %d is not 1-%d seconds", sec, MaxStopTimeout)
	}
	return ""
}

// ValidateScriptName accepts the file name of a script in the app's run
// directory (RunDir) that the helper's run verb runs: NAME.sh, NAME a DNS
// label of at most 63 characters (check_script on the node).
func ValidateScriptName(name string) string {
	base, ok := strings.CutSuffix(name, ".sh")
	if !ok || api.ValidateName(base) != "" {
		return fmt.Sprintf("%q is not a script name (NAME.sh, NAME a DNS label of at most 63 characters)", name)
	}
	return ""
}

// ValidateParam applies the rule of one kind of node parameter to its
// text form, as the node's helper receives it (`bakery-sudo check KIND
// VALUE`): app, slot, port, release, seconds, host, cert-host, process,
// replicas, script, sched-name, concurrency, calendar, runtime. It exists
// so that one table of cases can be run against both sides.
func ValidateParam(kind, value string) string {
	switch kind {
	case "app":
		return api.ValidateName(value)
	case "slot":
		return ValidateSlot(value)
	case "release":
		return ValidateRelease(value)
	case "host":
		return api.ValidateHost(value)
	case "cert-host":
		return api.ValidateCertificateHost(value)
	case "process":
		return api.ValidateProcessName(value)
	case "replicas":
		n, err := strconv.Atoi(value)
		if err != nil || strconv.Itoa(n) != value {
			return fmt.Sprintf("%q is not a decimal number", value)
		}
		return ValidateReplicas(n)
	case "script":
		return ValidateScriptName(value)
	case "sched-name":
		return ValidateSchedName(value)
	case "concurrency":
		return ValidateConcurrency(value)
	case "calendar":
		return ValidateCalendar(value)
	case "header-name":
		return api.ValidateHeaderName(value)
	case "text":
		return api.ValidateText(value)
	case "body-size":
		return api.ValidateBodySize(value)
	case "runtime":
		if value != api.RuntimeSystemd && value != api.RuntimeDocker {
			return fmt.Sprintf("%q is not a runtime (systemd or docker)", value)
		}
		return ""
	case "persist":
		return api.ValidatePersistentPath(value)
	case "memory", "cpu", "tasks":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != value || n < 1 {
			return fmt.Sprintf("%q is not a positive decimal number", value)
		}
		switch kind {
		case "memory":
			return Limits{MemoryBytes: n}.Validate()
		case "cpu":
			return Limits{CPUMilli: n}.Validate()
		}
		if n > api.MaxTasks {
			return Limits{Tasks: api.MaxTasks + 1}.Validate()
		}
		return ""
	case "port", "seconds":
		n, err := strconv.Atoi(value)
		if err != nil || strconv.Itoa(n) != value {
			return fmt.Sprintf("%q is not a decimal number", value)
		}
		if kind == "port" {
			return api.ValidatePort(n)
		}
		return ValidateStopTimeout(n)
	}
	return fmt.Sprintf("unknown parameter kind %q", kind)
}
