package sshexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshExecutor runs commands on one Target through the Pool.
type sshExecutor struct {
	p      *Pool
	t      Target
	closed atomic.Bool
}

var _ Executor = (*sshExecutor)(nil)

func (e *sshExecutor) Run(ctx context.Context, cmd Command) (Result, error) {
	j, err := runJob(cmd)
	if err != nil {
		return Result{}, err
	}
	res, err := execute(ctx, e.start, j)
	if err != nil && !errors.As(err, new(*ExitError)) {
		err = fmt.Errorf("run on %s: %w", e.t, err)
	}
	return res, err
}

func (e *sshExecutor) WriteFile(ctx context.Context, f File) error {
	j, err := fileJob(f)
	if err != nil {
		return err
	}
	res, err := execute(ctx, e.start, j)
	return writeFileResult(f, res, err)
}

// Close makes later calls on this Executor fail with ErrClosed. The
// connection belongs to the Pool (see Pool.Forget and Pool.Close).
func (e *sshExecutor) Close() error {
	e.closed.Store(true)
	return nil
}

// openRetries bounds retries of a refused session open (sshd may still
// count a just-closed session against MaxSessions for a moment).
var openRetries = []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond}

// start opens a session and starts the bootstrap. A connection found dead
// before the command was sent is redialled once, transparently.
func (e *sshExecutor) start(ctx context.Context) (process, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	redialled, refused := false, 0
	for {
		c, err := e.p.conn(ctx, e.t)
		if err != nil {
			return nil, err
		}
		sp, err := c.acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue // the connection died while we queued: redial
		}
		if sp != nil {
			c.fill()
			return sp, nil // a spare session, its shell already waiting
		}
		sp, err = startSession(c)
		if err == nil {
			c.fill()
			return sp, nil
		}
		c.release()
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			// The connection works but the server refused a session.
			if refused < len(openRetries) {
				if err := sleepCtx(ctx, openRetries[refused]); err != nil {
					return nil, err
				}
				refused++
				continue
			}
			return nil, fmt.Errorf("%w: open session: %w", ErrConnection, err)
		}
		// The transport failed: drop the connection and dial once more.
		c.close()
		if redialled {
			return nil, fmt.Errorf("%w: open session: %w", ErrConnection, err)
		}
		redialled = true
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startSession opens a session channel and sends the exec request without
// waiting for its reply (saving a round trip): the frame written next is
// buffered by sshd until the command starts, and a refused exec shows as a
// session closed without exit status.
func startSession(c *poolConn) (*sshProc, error) {
	ch, reqs, err := c.client.OpenChannel("session", nil)
	if err != nil {
		return nil, err
	}
	exec := struct{ Command string }{Bootstrap}
	if _, err := ch.SendRequest("exec", false, ssh.Marshal(&exec)); err != nil {
		ch.Close()
		return nil, err
	}
	p := &sshProc{c: c, ch: ch, in: &sessionStdin{ch: ch}, status: make(chan exitStatus, 1), ended: make(chan struct{}), done: make(chan struct{})}
	go p.serveRequests(reqs)
	return p, nil
}

type exitStatus struct {
	code int
	ok   bool // an exit-status or exit-signal arrived
}

// signalNumbers maps RFC 4254 signal names to Linux numbers, for exit
// codes in the shell's 128+n convention.
var signalNumbers = map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15}

// serveRequests reads the channel's requests until the channel closes and
// then reports the exit status.
func (p *sshProc) serveRequests(reqs <-chan *ssh.Request) {
	st := readExitStatus(reqs)
	close(p.ended)
	p.status <- st
}

// readExitStatus reads a session channel's requests until the channel
// closes and returns the exit status it reported (an exit signal as
// 128+n), refusing whatever else wants a reply.
func readExitStatus(reqs <-chan *ssh.Request) exitStatus {
	var st exitStatus
	for req := range reqs {
		switch req.Type {
		case "exit-status":
			var v struct{ Status uint32 }
			if ssh.Unmarshal(req.Payload, &v) == nil {
				st = exitStatus{code: int(v.Status), ok: true}
			}
		case "exit-signal":
			var v struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}
			if ssh.Unmarshal(req.Payload, &v) == nil {
				st = exitStatus{code: 128 + signalNumbers[v.Signal], ok: true}
			}
		}
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
	return st
}

// probe reports whether a spare session is still open, with a channel
// request that sshd answers (with a failure) at once: a spare may have died
// with its connection or its sshd while it waited. Bounded by ctx and the
// keepalive interval; a connection that does not answer is left to the
// keepalive.
func (p *sshProc) probe(ctx context.Context) bool {
	select {
	case <-p.ended:
		return false
	default:
	}
	answered := make(chan error, 1)
	go func() {
		_, err := p.ch.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	t := time.NewTimer(p.c.p.cfg.KeepaliveInterval)
	defer t.Stop()
	select {
	case err := <-answered:
		return err == nil
	case <-p.ended:
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}

// sessionStdin serialises Write and Close: x/crypto's channel does not
// allow CloseWrite concurrently with Write. Closing during a Write (which
// may be blocked on the SSH window) closes the whole channel instead; the
// node sees end of file either way.
type sessionStdin struct {
	ch      ssh.Channel
	mu      sync.Mutex
	writing bool
	closed  bool
}

func (in *sessionStdin) Write(p []byte) (int, error) {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return 0, io.ErrClosedPipe
	}
	in.writing = true
	in.mu.Unlock()
	n, err := in.ch.Write(p)
	in.mu.Lock()
	in.writing = false
	in.mu.Unlock()
	return n, err
}

func (in *sessionStdin) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil
	}
	in.closed = true
	if in.writing {
		return in.ch.Close()
	}
	return in.ch.CloseWrite()
}

// sshProc is one session running the bootstrap.
type sshProc struct {
	c        *poolConn
	ch       ssh.Channel
	in       *sessionStdin
	status   chan exitStatus
	ended    chan struct{} // closed when the channel has closed
	done     chan struct{} // closed when wait has returned
	waitOnce sync.Once
	code     int
	waitErr  error
	killOnce sync.Once
}

func (p *sshProc) stdin() io.WriteCloser { return p.in }
func (p *sshProc) stdout() io.Reader     { return p.ch }
func (p *sshProc) stderr() io.Reader     { return p.ch.Stderr() }

func (p *sshProc) wait() (int, error) {
	p.waitOnce.Do(func() {
		defer close(p.done)
		st := <-p.status
		if st.ok {
			p.code = st.code
			return
		}
		// No exit status: the connection (or sshd) went away, or sshd
		// refused the command. If the connection is really gone, the
		// pool's watcher drops it; otherwise check.
		if !p.c.alive(2 * time.Second) {
			p.c.close()
		}
		p.waitErr = fmt.Errorf("%w: session ended without exit status", ErrConnection)
	})
	return p.code, p.waitErr
}

// kill closes the session and frees its slot. If the session does not end
// promptly (an unresponsive connection), the connection is closed, which
// ends every read on it.
func (p *sshProc) kill() {
	p.killOnce.Do(func() {
		_ = p.ch.Close()
		p.c.release()
		select {
		case <-p.done:
			return
		default:
		}
		go func() {
			t := time.NewTimer(2 * time.Second)
			defer t.Stop()
			select {
			case <-p.done:
			case <-t.C:
				p.c.close()
			}
		}()
	})
}
