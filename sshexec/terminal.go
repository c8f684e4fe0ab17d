package sshexec

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

// Terminal is an interactive command on a pseudo-terminal: what the user
// types (Stdin) reaches it, its output (stdout and stderr merged by the
// terminal) goes to Output, and Resize carries window size changes.
type Terminal struct {
	// Command is the remote command line. It is sent in the SSH exec
	// request, so it must hold no secret: it names a script the caller
	// wrote before.
	Command    string
	Rows, Cols int
	Stdin      io.Reader
	Output     io.Writer
	// Resize, if not nil, delivers window sizes [rows, cols].
	Resize <-chan [2]int
}

// TerminalRunner is implemented by the SSH Executor: it runs a command on
// a pseudo-terminal in a session of its own.
type TerminalRunner interface {
	RunTerminal(ctx context.Context, t Terminal) (exitCode int, err error)
}

var _ TerminalRunner = (*sshExecutor)(nil)

// RunTerminal runs t.Command on a pty over the node's pooled connection, in
// a session opened for it (outside the pool's session accounting: an
// interactive session is rare and long). It returns the command's exit
// status when it ends, or ctx's error (the session is closed then).
func (e *sshExecutor) RunTerminal(ctx context.Context, t Terminal) (int, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	c, err := e.p.conn(ctx, e.t)
	if err != nil {
		return 0, err
	}
	if !c.use() {
		return 0, fmt.Errorf("%w: the connection closed", ErrConnection)
	}
	defer c.unuse()
	ch, reqs, err := c.client.OpenChannel("session", nil)
	if err != nil {
		return 0, fmt.Errorf("%w: open session: %w", ErrConnection, err)
	}
	defer ch.Close()
	status := make(chan exitStatus, 1)
	go func() { status <- readExitStatus(reqs) }()
	rows, cols := max(t.Rows, 1), max(t.Cols, 1)
	pty := struct {
		Term                      string
		Cols, Rows, Width, Height uint32
		Modes                     string
	}{"xterm-256color", uint32(cols), uint32(rows), 0, 0, string([]byte{0})}
	if ok, err := ch.SendRequest("pty-req", true, ssh.Marshal(&pty)); err != nil || !ok {
		return 0, fmt.Errorf("%w: pty request refused (%v)", ErrConnection, err)
	}
	exec := struct{ Command string }{t.Command}
	if ok, err := ch.SendRequest("exec", true, ssh.Marshal(&exec)); err != nil || !ok {
		return 0, fmt.Errorf("%w: exec request refused (%v)", ErrConnection, err)
	}
	if t.Stdin != nil {
		go func() {
			_, _ = io.Copy(ch, t.Stdin)
			_ = ch.CloseWrite()
		}()
	}
	if t.Resize != nil {
		go func() {
			for sz := range t.Resize {
				win := struct{ Cols, Rows, Width, Height uint32 }{uint32(max(sz[1], 1)), uint32(max(sz[0], 1)), 0, 0}
				if _, err := ch.SendRequest("window-change", false, ssh.Marshal(&win)); err != nil {
					return
				}
			}
		}()
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(t.Output, io.MultiReader(ch, ch.Stderr()))
		copied <- err
	}()
	select {
	case <-ctx.Done():
		_ = ch.Close()
		return 0, ctx.Err()
	case err := <-copied:
		st := <-status
		if !st.ok {
			if err == nil {
				err = errors.New("the session ended without an exit status")
			}
			return 0, fmt.Errorf("%w: %w", ErrConnection, err)
		}
		return st.code, nil
	}
}
