package sshexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// process is one started bootstrap, over SSH or local.
type process interface {
	stdin() io.WriteCloser
	stdout() io.Reader
	stderr() io.Reader
	// wait waits for the bootstrap to exit and its output to be closed. err
	// reports a transport failure, not a non-zero exit.
	wait() (code int, err error)
	// kill forcibly ends the process (or session) so that wait and the
	// output readers return.
	kill()
}

// starter starts the bootstrap. Errors it returns are already classified.
type starter func(ctx context.Context) (process, error)

// killGrace bounds how long a cancelled command may take to die once its
// stdin is closed: the watcher sends KILL after 2 s.
const killGrace = 5 * time.Second

type job struct {
	frame     []byte    // header and code
	body      io.Reader // bytes following the frame (stdin data, file content)
	holdStdin bool      // keep stdin open until the end (Run), else close after body
	cmd       Command   // Sink, capture, heartbeat, timeout
}

// execute runs one job on a process obtained from start. It implements the
// shared semantics of all executors: streaming, capture, heartbeat,
// timeout and cancellation through stdin EOF.
func execute(ctx context.Context, start starter, j job) (res Result, err error) {
	began := time.Now()
	defer func() { res.Duration = time.Since(began) }()
	if ctx.Err() != nil {
		return res, ctxError(ctx, ctx)
	}
	runCtx := ctx
	if j.cmd.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, j.cmd.Timeout)
		defer cancel()
	}
	p, err := start(runCtx)
	if err != nil {
		if runCtx.Err() != nil {
			return res, ctxError(ctx, runCtx)
		}
		return res, err
	}

	wrote := make(chan error, 1)
	go func() {
		_, err := p.stdin().Write(j.frame)
		if err == nil && j.body != nil {
			_, err = io.Copy(p.stdin(), j.body)
		}
		if !j.holdStdin {
			p.stdin().Close()
		}
		wrote <- err
	}()

	limit := j.cmd.CaptureLimit
	if limit == 0 {
		limit = DefaultCaptureLimit
	}
	em := &emitter{sink: j.cmd.Sink}
	outCap, errCap := &capture{limit: limit}, &capture{limit: limit}
	var readers sync.WaitGroup
	var copyErr error
	if j.cmd.Stdout != nil {
		readers.Go(func() {
			if _, copyErr = io.Copy(j.cmd.Stdout, p.stdout()); copyErr != nil {
				p.kill() // nobody reads the rest: end the command
				_, _ = io.Copy(io.Discard, p.stdout())
			}
		})
	} else {
		readers.Go(func() { _ = pump(p.stdout(), Stdout, em, outCap) })
	}
	readers.Go(func() { _ = pump(p.stderr(), Stderr, em, errCap) })

	stopBeat := make(chan struct{})
	var beat sync.WaitGroup
	if j.cmd.Heartbeat != nil {
		every := j.cmd.HeartbeatEvery
		if every <= 0 {
			every = 10 * time.Second
		}
		beat.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-stopBeat:
					return
				case <-t.C:
					select {
					case <-stopBeat:
						return
					default:
					}
					j.cmd.Heartbeat(time.Since(began))
				}
			}
		})
	}

	type exit struct {
		code int
		err  error
	}
	exited := make(chan exit, 1)
	go func() {
		// Read all output first: wait must not close the pipes under the
		// readers (os/exec rule), and lines must all be delivered.
		readers.Wait()
		code, err := p.wait()
		exited <- exit{code, err}
	}()

	var ex exit
	canceled := false
	select {
	case ex = <-exited:
	case <-runCtx.Done():
		canceled = true
		// End of file on stdin makes the node's watcher kill the script's
		// process group; the bootstrap then exits and the session closes.
		p.stdin().Close()
		t := time.NewTimer(killGrace)
		select {
		case ex = <-exited:
		case <-t.C:
			p.kill()
			ex = <-exited
		}
		t.Stop()
	}
	close(stopBeat)
	beat.Wait()
	p.stdin().Close()
	p.kill() // releases the session; a no-op for finished local processes
	// The writer ends once its writes fail, but a File.Reader that blocks
	// may hold it: do not wait for it. An exit status of 0 means the node
	// received everything.
	var werr error
	select {
	case werr = <-wrote:
	default:
	}

	res.ExitCode = ex.code
	res.Stdout, res.Stderr = outCap.buf, errCap.buf
	res.Truncated = outCap.truncated || errCap.truncated
	switch {
	case canceled:
		return res, ctxError(ctx, runCtx)
	case copyErr != nil:
		return res, fmt.Errorf("writing stdout: %w", copyErr)
	case ex.err != nil:
		return res, ex.err
	case ex.code != 0:
		return res, &ExitError{Code: ex.code, NoSpace: errCap.noSpace}
	case werr != nil && !j.holdStdin:
		return res, fmt.Errorf("%w: sending input: %w", ErrConnection, werr)
	}
	return res, nil
}

// ctxError classifies the end of runCtx: the caller's cancellation or the
// command's own timeout.
func ctxError(parent, runCtx context.Context) error {
	if err := parent.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		return fmt.Errorf("%w: %w", ErrCanceled, err)
	}
	return fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)
}

// runJob builds the job for a Command.
func runJob(cmd Command) (job, error) {
	stdinLen := int64(-1)
	var body io.Reader
	if cmd.Stdin != nil {
		data, err := readStdin(cmd.Stdin)
		if err != nil {
			return job{}, err
		}
		stdinLen = int64(len(data))
		body = bytes.NewReader(data)
	}
	fr, err := runPayload(cmd, stdinLen)
	if err != nil {
		return job{}, err
	}
	return job{frame: fr, body: body, holdStdin: true, cmd: cmd}, nil
}

// fileJob builds the job for a WriteFile.
func fileJob(f File) (job, error) {
	body, size := f.Reader, f.Size
	if f.Content != nil || f.Reader == nil {
		body, size = bytes.NewReader(f.Content), int64(len(f.Content))
	}
	if size < 0 {
		return job{}, invalidf("negative file size")
	}
	fr, err := filePayload(f, size)
	if err != nil {
		return job{}, err
	}
	return job{frame: fr, body: io.LimitReader(body, size), holdStdin: false, cmd: Command{CaptureLimit: 4096}}, nil
}

// writeFileResult turns a WriteFile run into its error, adding the
// node's message for a failed write.
func writeFileResult(f File, res Result, err error) error {
	var ee *ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("write %s: %w: %s", f.Path, err, bytes.TrimSpace(res.Stderr))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}
