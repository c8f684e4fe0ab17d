package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// gitEnv is the environment of every git process: the control plane's own,
// minus variables that would redirect git to another repository, plus
// settings that keep git from ever waiting for a human.
func gitEnv() []string {
	drop := map[string]bool{
		"GIT_DIR": true, "GIT_WORK_TREE": true, "GIT_INDEX_FILE": true,
		"GIT_OBJECT_DIRECTORY": true, "GIT_ALTERNATE_OBJECT_DIRECTORIES": true,
		"GIT_COMMON_DIR": true, "GIT_NAMESPACE": true, "GIT_CEILING_DIRECTORIES": true,
		"GIT_TERMINAL_PROMPT": true, "LC_ALL": true, "LANGUAGE": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	env = append(env,
		"GIT_TERMINAL_PROMPT=0", // fail instead of asking for credentials
		"LC_ALL=C",              // stable, English messages
	)
	if _, ok := os.LookupEnv("GIT_ALLOW_PROTOCOL"); !ok {
		// No remote helpers such as ext:: (which runs commands) for URLs
		// that come from manifests. An operator who needs another
		// transport sets GIT_ALLOW_PROTOCOL for the control plane.
		env = append(env, "GIT_ALLOW_PROTOCOL=file:git:http:https:ssh")
	}
	return env
}

// gitError is a failed git command: which one, and what git said.
type gitError struct {
	args   []string
	err    error
	stderr string
}

func (e *gitError) Error() string {
	msg := "git " + e.args[0] + ": " + e.err.Error()
	if e.stderr != "" {
		msg += ": " + e.stderr
	}
	return msg
}

func (e *gitError) Unwrap() error { return e.err }

// maxStderr bounds how much of git's stderr ends up in an error.
const maxStderr = 2000

// trimStderr makes git's stderr fit in one error message: hints and blank
// lines dropped, lines joined with "; ", long output cut.
func trimStderr(b []byte, secret string) string {
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(strings.TrimRight(l, "\r"))
		if l == "" || strings.HasPrefix(l, "hint:") {
			continue
		}
		lines = append(lines, l)
	}
	s := strings.Join(lines, "; ")
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "xxxxx")
	}
	if len(s) > maxStderr {
		s = s[:maxStderr] + "…"
	}
	return s
}

// runGit runs git with args, stdin from in (may be nil), and returns its
// stdout. Each run is bounded by timeout; cancellation kills git and
// everything it started (ssh, remote helpers).
func runGit(ctx context.Context, timeout time.Duration, secret string, in io.Reader, args ...string) ([]byte, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = gitEnv()
	cmd.Stdin = in
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole process group: git's children hold the pipes too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		// Name the subcommand, not the global options before it.
		sub := args
		for len(sub) > 1 && strings.HasPrefix(sub[0], "-") {
			if sub[0] == "-c" || sub[0] == "-C" {
				sub = sub[1:]
			}
			sub = sub[1:]
		}
		if perr := parent.Err(); perr != nil {
			err = perr
		} else if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v: %w", timeout, ctx.Err())
		}
		return stdout.Bytes(), &gitError{args: sub, err: err, stderr: trimStderr(stderr.Bytes(), secret)}
	}
	return stdout.Bytes(), nil
}

// redact hides the password of a URL such as https://user:token@host/x,
// for errors and logs.
func redact(repo string) string {
	if u, err := url.Parse(repo); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return repo
}

// secretOf returns the password of a URL, to be scrubbed from git's
// messages, or "".
func secretOf(repo string) string {
	if u, err := url.Parse(repo); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && len(p) >= 4 {
			return p
		}
	}
	return ""
}
