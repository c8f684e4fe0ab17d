package sshexec

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// Stream names the output stream a Line came from.
type Stream uint8

const (
	Stdout Stream = iota + 1
	Stderr
)

func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return "unknown"
}

// Line is one line of a command's output, without its trailing newline (and
// without a trailing carriage return). A line longer than [MaxLineBytes] is
// delivered as several Lines. Seq starts at 1 for each command and increases
// by one per Line across both streams, in the order the lines were received.
type Line struct {
	Seq    int64
	Stream Stream
	Time   time.Time // when the bytes were read by the executor
	Text   string
}

// MaxLineBytes is the longest Line.Text; longer output lines are split.
const MaxLineBytes = 64 << 10

// Sink receives a command's output lines. For one command, Line is called in
// Seq order and never concurrently, and never after Run has returned. A slow
// Sink slows the command down (back-pressure reaches the remote process
// through the SSH window); no line is dropped. A Sink that never returns
// keeps Run from returning, even after cancellation.
type Sink interface {
	Line(Line)
}

// SinkFunc adapts a function to a [Sink].
type SinkFunc func(Line)

// Line calls f(l).
func (f SinkFunc) Line(l Line) { f(l) }

var _ Sink = SinkFunc(nil)

// DefaultCaptureLimit is the number of bytes of stdout and of stderr kept in
// a Result when Command.CaptureLimit is zero.
const DefaultCaptureLimit = 1 << 20

// Command is one script to run on a node.
type Command struct {
	// Script is a POSIX sh script, run by /bin/sh in its own process group
	// with stdin from Stdin (or /dev/null).
	Script string
	// Env holds environment variables for the script. Names must match
	// [A-Za-z_][A-Za-z0-9_]*. Values travel over stdin, never on a command
	// line, and do not depend on sshd's AcceptEnv.
	Env map[string]string
	// Stdin, if not nil, is read to EOF before the script starts (at most
	// MaxStdinBytes) and given to the script as its standard input.
	Stdin io.Reader
	// Dir is the working directory; empty means the user's home directory
	// (SSH) or the control plane's working directory (Local).
	Dir string
	// Timeout, if positive, bounds the command, waiting for a connection
	// and a session slot included; when it expires the remote process group
	// is killed and Run returns an error matching ErrTimeout.
	Timeout time.Duration
	// Sink, if not nil, receives the output line by line as it is produced.
	Sink Sink
	// Stdout, if not nil, receives the standard output as it is, byte for
	// byte (an archive, say), instead of Sink and the Result: only
	// standard error is split into lines and captured. A write error ends
	// the command with that error.
	Stdout io.Writer
	// CaptureLimit bounds how many bytes of stdout and of stderr are kept in
	// Result (the first bytes of each). Zero means DefaultCaptureLimit; a
	// negative value keeps nothing.
	CaptureLimit int
	// Heartbeat, if not nil, is called every HeartbeatEvery (default 10 s)
	// with the time elapsed while the command still runs. It is called from
	// its own goroutine, never concurrently with itself.
	Heartbeat      func(elapsed time.Duration)
	HeartbeatEvery time.Duration
}

// MaxStdinBytes bounds Command.Stdin.
const MaxStdinBytes = 64 << 20

// Result describes a finished command. Run fills it in also when it returns
// an [*ExitError]; after other errors only Duration (and what was captured so
// far) is meaningful.
type Result struct {
	ExitCode  int
	Duration  time.Duration
	Stdout    []byte // the first CaptureLimit bytes of stdout
	Stderr    []byte // the first CaptureLimit bytes of stderr
	Truncated bool   // some output was not captured
}

// File is a file to write on a node with [Executor.WriteFile]: the content is
// written to a temporary file next to Path, which is then renamed over Path,
// so readers see either the old or the new file, never a partial one.
type File struct {
	Path    string      // absolute path; the directory must exist
	Mode    fs.FileMode // permission bits; zero means 0644
	Content []byte      // the content, or
	Reader  io.Reader   // the content, exactly Size bytes, when Content is nil
	Size    int64
	// Reader is read by a goroutine; if it blocks when WriteFile is
	// cancelled, that goroutine ends only when Read returns.
}

// Executor runs commands on one node. Implementations are safe for
// concurrent use.
type Executor interface {
	// Run runs cmd and waits for it to finish. A non-zero exit status is
	// returned as an *ExitError together with the Result. When ctx ends or
	// the timeout expires, the remote process group is killed before Run
	// returns (bounded by a few seconds) and the error matches ErrCanceled or
	// ErrTimeout.
	Run(ctx context.Context, cmd Command) (Result, error)
	// WriteFile writes f atomically (temporary file and rename), content over
	// the same stdin channel as scripts: no scp or sftp is needed.
	WriteFile(ctx context.Context, f File) error
	// Close releases the executor's resources.
	Close() error
}
