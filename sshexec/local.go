package sshexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// Local runs commands on the control plane's own host with os/exec, through
// the same bootstrap as SSH: same line streaming, same environment delivery
// over stdin, same cancellation (the script's process group is killed). The
// script does not inherit the control plane's environment (which may hold
// secrets): it gets only PATH, HOME, USER, LOGNAME, LANG and TMPDIR from it,
// plus Command.Env. The zero value is ready to use.
type Local struct {
	mu     sync.Mutex
	closed bool
}

var _ Executor = (*Local)(nil)

// NewLocal returns a local executor.
func NewLocal() *Local { return &Local{} }

// Run implements [Executor].
func (l *Local) Run(ctx context.Context, cmd Command) (Result, error) {
	j, err := runJob(cmd)
	if err != nil {
		return Result{}, err
	}
	return execute(ctx, l.start, j)
}

// WriteFile implements [Executor].
func (l *Local) WriteFile(ctx context.Context, f File) error {
	j, err := fileJob(f)
	if err != nil {
		return err
	}
	res, err := execute(ctx, l.start, j)
	return writeFileResult(f, res, err)
}

// Close makes later calls fail with ErrClosed. Running commands go on.
func (l *Local) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

func localEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (l *Local) start(ctx context.Context) (process, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	c := exec.Command("/bin/sh", "-c", bootstrapScript)
	c.Env = localEnv()
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	lp := &localProc{cmd: c}
	var files []*os.File
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return
	}
	fail := func(err error) (process, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("%w: start /bin/sh: %w", ErrConnection, err)
	}
	inR, inW, err := pipe()
	if err != nil {
		return fail(err)
	}
	outR, outW, err := pipe()
	if err != nil {
		return fail(err)
	}
	errR, errW, err := pipe()
	if err != nil {
		return fail(err)
	}
	c.Stdin, c.Stdout, c.Stderr = inR, outW, errW
	if err := c.Start(); err != nil {
		return fail(err)
	}
	inR.Close()
	outW.Close()
	errW.Close()
	lp.in, lp.out, lp.err = inW, outR, errR
	lp.exited = make(chan struct{})
	// Reap at once (cmd.Wait closes none of our pipes): the watcher on the
	// node side tells a live script from a finished one by its pid.
	go func() {
		lp.reap(c.Wait())
		close(lp.exited)
	}()
	return lp, nil
}

type localProc struct {
	cmd      *exec.Cmd
	in       *os.File
	out, err *os.File
	exited   chan struct{} // closed when the process has been reaped
	code     int
	waitErr  error
	killOnce sync.Once
}

func (p *localProc) stdin() io.WriteCloser { return p.in }
func (p *localProc) stdout() io.Reader     { return p.out }
func (p *localProc) stderr() io.Reader     { return p.err }

func (p *localProc) reap(err error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		p.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.code = 128 + int(ws.Signal())
		}
	default:
		p.waitErr = fmt.Errorf("%w: %w", ErrConnection, err)
	}
}

func (p *localProc) wait() (int, error) {
	<-p.exited
	return p.code, p.waitErr
}

func (p *localProc) kill() {
	p.killOnce.Do(func() {
		select {
		case <-p.exited:
		default:
			// The command's process group: script, watcher and children.
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
		// Unblock readers held up by stray processes keeping the pipes.
		p.out.Close()
		p.err.Close()
	})
}
