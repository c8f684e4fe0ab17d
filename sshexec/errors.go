package sshexec

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Sentinel errors. Errors returned by this package wrap one of them (or are
// an [*ExitError]); test with [errors.Is].
var (
	// ErrConnection: the node could not be reached, the handshake failed or
	// the connection dropped while a command ran. Retrying may help.
	ErrConnection = errors.New("sshexec: connection failed")
	// ErrAuth: the node refused Bakery's key. Retrying helps only once the
	// key has been installed on the node.
	ErrAuth = errors.New("sshexec: authentication failed")
	// ErrHostKeyMismatch: the node presented a host key other than the
	// pinned (or first seen) one. Terminal: see [IsTerminal].
	ErrHostKeyMismatch = errors.New("sshexec: host key mismatch")
	// ErrTimeout: Command.Timeout expired; the remote process was killed.
	// Such errors also match context.DeadlineExceeded.
	ErrTimeout = errors.New("sshexec: command timed out")
	// ErrCanceled: the caller's context ended; the remote process was killed.
	// Such errors also match the context's own error.
	ErrCanceled = errors.New("sshexec: command canceled")
	// ErrInvalidCommand: the Command or File cannot be sent (a NUL byte, a bad
	// environment name, a relative path...). Terminal.
	ErrInvalidCommand = errors.New("sshexec: invalid command")
	// ErrClosed: the Pool or Executor was closed.
	ErrClosed = errors.New("sshexec: executor closed")
	// ErrNoSpace: the command or file write failed and its error output
	// says "No space left on device" (ENOSPC): the node's filesystem is
	// full. Such an error is also an [*ExitError].
	ErrNoSpace = errors.New("sshexec: no space left on device")
)

// ExitError reports that the script ran and exited with a non-zero status.
// Run returns it together with a complete Result.
type ExitError struct {
	Code int
	// NoSpace: the command's error output said "No space left on device";
	// errors.Is(err, ErrNoSpace) then holds.
	NoSpace bool
}

func (e *ExitError) Error() string { return fmt.Sprintf("sshexec: exit status %d", e.Code) }

// Unwrap lets errors.Is find ErrNoSpace for a command that failed for a
// full filesystem.
func (e *ExitError) Unwrap() error {
	if e.NoSpace {
		return ErrNoSpace
	}
	return nil
}

// HostKeyError reports a host key mismatch. It matches [ErrHostKeyMismatch]
// and unwraps to a [*knownhosts.KeyError] whose Want holds the expected key.
type HostKeyError struct {
	Addr string        // the address dialled
	Want ssh.PublicKey // the pinned or first-seen key
	Got  ssh.PublicKey // the key the server presented
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("sshexec: host key mismatch for %s: want %s %s, got %s %s", e.Addr,
		e.Want.Type(), ssh.FingerprintSHA256(e.Want), e.Got.Type(), ssh.FingerprintSHA256(e.Got))
}

// Unwrap lets errors.Is find ErrHostKeyMismatch and errors.As a
// *knownhosts.KeyError.
func (e *HostKeyError) Unwrap() []error {
	return []error{ErrHostKeyMismatch, &knownhosts.KeyError{Want: []knownhosts.KnownKey{{Key: e.Want, Filename: "pinned", Line: 1}}}}
}

// IsTerminal reports whether err is one that retrying cannot fix: a host key
// mismatch or an invalid command. The reconciler marks such a node or
// deployment Stalled instead of retrying.
func IsTerminal(err error) bool {
	return errors.Is(err, ErrHostKeyMismatch) || errors.Is(err, ErrInvalidCommand)
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidCommand}, args...)...)
}
