package sshexec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"
)

func TestGenerateKey(t *testing.T) {
	priv, line, err := GenerateKey("bakery@test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(priv), "-----BEGIN OPENSSH PRIVATE KEY-----") || !strings.HasPrefix(line, "ssh-ed25519 ") || !strings.HasSuffix(line, " bakery@test") {
		t.Fatalf("unexpected formats:\n%s\n%s", priv, line)
	}
	signer, err := ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(line)
	if err != nil {
		t.Fatal(err)
	}
	if FormatPublicKey(pub) != FormatPublicKey(signer.PublicKey()) {
		t.Fatal("public key does not match the private key")
	}
	if _, err := ParsePrivateKey([]byte("garbage")); err == nil {
		t.Fatal("garbage parsed")
	}
	srv := startTestServer(t, pub)
	p := newTestPool(t, signer, nil)
	if _, err := p.Executor(srv.target()).Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
}

func TestHostKeyMismatch(t *testing.T) {
	signer := newSigner(t)
	srv := startTestServer(t, signer.PublicKey())
	p := newTestPool(t, signer, nil)
	tg := srv.target()
	tg.HostKey = FormatPublicKey(newSigner(t).PublicKey())
	_, err := p.Executor(tg).Run(t.Context(), Command{Script: "true"})
	var hke *HostKeyError
	var kerr *knownhosts.KeyError
	if !errors.Is(err, ErrHostKeyMismatch) || !IsTerminal(err) || !errors.As(err, &hke) || !errors.As(err, &kerr) || len(kerr.Want) != 1 {
		t.Fatalf("got %v, want a terminal host key mismatch", err)
	}
	if FormatPublicKey(hke.Got) != FormatPublicKey(srv.hostSigner.PublicKey()) {
		t.Error("HostKeyError.Got is not the server's key")
	}
	tg.HostKey = "not a key"
	if _, err := p.Executor(tg).Run(t.Context(), Command{Script: "true"}); !IsTerminal(err) {
		t.Fatalf("invalid pinned key: %v", err)
	}
}

func TestTrustOnFirstUse(t *testing.T) {
	signer := newSigner(t)
	srv := startTestServer(t, signer.PublicKey())
	var seen []string
	p := newTestPool(t, signer, func(c *Config) {
		c.HostKeySeen = func(tg Target, k string) { seen = append(seen, tg.Addr+" "+k) }
	})
	tg := Target{Addr: srv.addr, User: "u"}
	if _, ok := p.HostKey(tg); ok {
		t.Fatal("a key is known before the first handshake")
	}
	if _, err := p.Executor(tg).Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
	want := FormatPublicKey(srv.hostSigner.PublicKey())
	if got, ok := p.HostKey(tg); !ok || got != want {
		t.Fatalf("HostKey = %q, %v; want %q", got, ok, want)
	}
	if len(seen) != 1 || seen[0] != srv.addr+" "+want {
		t.Fatalf("HostKeySeen calls: %q", seen)
	}

	// Another server (another key) on the same address: refused, as the
	// first key is now required.
	srv.close()
	ln, err := net.Listen("tcp", srv.addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", srv.addr, err)
	}
	ln.Close()
	srv2 := startTestServerAt(t, signer.PublicKey(), srv.addr)
	_, err = p.Executor(tg).Run(t.Context(), Command{Script: "true"})
	if !errors.Is(err, ErrHostKeyMismatch) {
		t.Fatalf("changed key: got %v, want ErrHostKeyMismatch", err)
	}
	// Forget lets the caller accept the new key deliberately.
	p.Forget(tg)
	if _, err := p.Executor(tg).Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.HostKey(tg); got != FormatPublicKey(srv2.hostSigner.PublicKey()) {
		t.Fatal("the new key was not recorded")
	}
}

func TestAuthFailure(t *testing.T) {
	srv := startTestServer(t, newSigner(t).PublicKey())
	p := newTestPool(t, newSigner(t), nil)
	_, err := p.Executor(srv.target()).Run(t.Context(), Command{Script: "true"})
	if !errors.Is(err, ErrAuth) || IsTerminal(err) || errors.Is(err, ErrConnection) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newTestPool(t, newSigner(t), nil)
	_, err = p.Executor(Target{Addr: addr, User: "u"}).Run(t.Context(), Command{Script: "true"})
	if !errors.Is(err, ErrConnection) || IsTerminal(err) {
		t.Fatalf("got %v, want ErrConnection", err)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	// A server that accepts and never speaks.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p := newTestPool(t, newSigner(t), func(c *Config) { c.HandshakeTimeout = 100 * time.Millisecond })
	began := time.Now()
	_, err = p.Executor(Target{Addr: ln.Addr().String(), User: "u"}).Run(t.Context(), Command{Script: "true"})
	if !errors.Is(err, ErrConnection) {
		t.Fatalf("got %v, want ErrConnection", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestDialTimeout(t *testing.T) {
	p := newTestPool(t, newSigner(t), func(c *Config) {
		c.DialTimeout = 50 * time.Millisecond
		c.Dialer = dialerFunc(func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done() // a dial that hangs until its deadline
			return nil, ctx.Err()
		})
	})
	_, err := p.Executor(Target{Addr: "127.0.0.1:1", User: "u"}).Run(t.Context(), Command{Script: "true"})
	if !errors.Is(err, ErrConnection) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

type dialerFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialerFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

func TestSessionLimitAndReuse(t *testing.T) {
	signer := newSigner(t)
	srv := startTestServer(t, signer.PublicKey())
	p := newTestPool(t, signer, func(c *Config) { c.MaxSessions = 3 })
	ex := p.Executor(srv.target())
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Go(func() {
			res, err := ex.Run(t.Context(), Command{Script: fmt.Sprintf("sleep 0.05; echo %d", i)})
			if err == nil && string(res.Stdout) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("command %d printed %q", i, res.Stdout)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if m := srv.maxOpen.Load(); m > 3 || m < 2 {
		t.Errorf("%d sessions open at once, want at most 3 (and concurrency)", m)
	}
}

func TestRedialAfterDrop(t *testing.T) {
	signer := newSigner(t)
	srv := startTestServer(t, signer.PublicKey())
	p := newTestPool(t, signer, nil)
	ex := p.Executor(srv.target())
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
	// A command running when the connection drops fails as a connection
	// error; the next one reconnects.
	marker := uniqueSleep()
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := ex.Run(t.Context(), Command{Script: "echo up; sleep " + marker, Sink: SinkFunc(func(Line) { close(running) })})
		done <- err
	}()
	<-running
	srv.dropAll()
	if err := <-done; !errors.Is(err, ErrConnection) {
		t.Fatalf("running command: got %v, want ErrConnection", err)
	}
	eventually(t, 5*time.Second, "remote sleep killed", func() bool { return len(liveProcs(marker)) == 0 })
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatalf("after drop: %v", err)
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	// A drop not yet noticed by the pool when the next command starts is
	// redialled transparently too.
	c, err := p.conn(t.Context(), srv.target())
	if err != nil {
		t.Fatal(err)
	}
	c.client.Conn.Close()
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatalf("after close: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	signer := newSigner(t)
	srv := startTestServer(t, signer.PublicKey())
	p := newTestPool(t, signer, func(c *Config) { c.IdleTimeout = 50 * time.Millisecond })
	ex := p.Executor(srv.target())
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "idle connection closed", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.conns) == 0
	})
	// A long command keeps its connection although it exceeds IdleTimeout.
	if _, err := ex.Run(t.Context(), Command{Script: "sleep 0.2"}); err != nil {
		t.Fatal(err)
	}
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// freezableConn stops passing data when frozen, like a network partition.
type freezableConn struct {
	net.Conn
	frozen *atomic.Bool
}

func (c *freezableConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	for c.frozen.Load() && err == nil {
		n, err = c.Conn.Read(b) // drop what arrives while frozen
	}
	return n, err
}

func (c *freezableConn) Write(b []byte) (int, error) {
	if c.frozen.Load() {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func TestKeepaliveDetectsPartition(t *testing.T) {
	signer := newSigner(t)
	srv := startTestServer(t, signer.PublicKey())
	var frozen atomic.Bool
	p := newTestPool(t, signer, func(c *Config) {
		c.KeepaliveInterval = 30 * time.Millisecond
		c.Dialer = dialerFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &freezableConn{Conn: nc, frozen: &frozen}, nil
		})
	})
	ex := p.Executor(srv.target())
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
	first, err := p.conn(t.Context(), srv.target())
	if err != nil {
		t.Fatal(err)
	}
	frozen.Store(true)
	eventually(t, 5*time.Second, "partitioned connection closed", func() bool {
		select {
		case <-first.done:
			return true
		default:
			return false
		}
	})
	frozen.Store(false)
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
}

func TestMaxDials(t *testing.T) {
	signer := newSigner(t)
	var dialing, most atomic.Int64
	p := newTestPool(t, signer, func(c *Config) {
		c.MaxDials = 2
		c.Dialer = dialerFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			n := dialing.Add(1)
			defer dialing.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond) // a slow network
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		})
	})
	var wg sync.WaitGroup
	for range 6 {
		srv := startTestServer(t, signer.PublicKey())
		wg.Go(func() {
			if _, err := p.Executor(srv.target()).Run(t.Context(), Command{Script: "true"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m > 2 {
		t.Errorf("%d dials at once, want at most 2", m)
	}
}

func TestClosed(t *testing.T) {
	ex, _, p := inProcess(t)
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
	ex.Close()
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed executor: %v", err)
	}
	p.Close()
	if _, err := p.Executor(Target{Addr: "127.0.0.1:1"}).Run(t.Context(), Command{Script: "true"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed pool: %v", err)
	}
	l := NewLocal()
	l.Close()
	if _, err := l.Run(t.Context(), Command{Script: "true"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed local: %v", err)
	}
}

func TestAlreadyCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ex, srv, _ := inProcess(t)
	for _, e := range []Executor{ex, NewLocal()} {
		if _, err := e.Run(ctx, Command{Script: "true"}); !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
			t.Errorf("%T: %v", e, err)
		}
	}
	if n := srv.accepted.Load(); n != 0 {
		t.Errorf("dialled %d times for a canceled context", n)
	}
}

func TestSpareSession(t *testing.T) {
	signer := newSigner(t)
	srv := startTestServer(t, signer.PublicKey())
	p := newTestPool(t, signer, func(c *Config) { c.MaxSessions = 2 })
	ex := p.Executor(srv.target())
	spare := func() *sshProc {
		settle(p)
		c, err := p.conn(t.Context(), srv.target())
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.spare
	}
	run := func(script, want string) {
		t.Helper()
		res, err := ex.Run(t.Context(), Command{Script: script})
		if err != nil || string(res.Stdout) != want {
			t.Fatalf("%q: %q, %v", script, res.Stdout, err)
		}
	}
	run("echo one", "one\n")
	sp := spare()
	if sp == nil {
		t.Fatal("no spare session after a command")
	}
	// The next command takes the spare, and a new one is opened.
	run("echo two", "two\n")
	sp2 := spare()
	if sp2 == nil || sp2 == sp {
		t.Fatalf("spare %p after taking %p", sp2, sp)
	}
	// Two commands at once (MaxSessions 2): one takes the spare; the spare
	// is not replaced while no slot is free, and nothing waits for ever.
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			if _, err := ex.Run(t.Context(), Command{Script: fmt.Sprintf("sleep 0.1; echo %d", i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	run("echo three", "three\n")
	if m := srv.maxOpen.Load(); m > 2 {
		t.Errorf("%d sessions open at once, want at most 2", m)
	}
	// A spare that died is replaced by a new session, transparently. (The
	// in-process server answers a close before its session has ended, so
	// its count of open sessions is not checked from here on.)
	sp3 := spare()
	if sp3 == nil {
		t.Fatal("no spare session")
	}
	sp3.ch.Close()
	run("echo four", "four\n")
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestSpareWaitCanceled(t *testing.T) {
	signer := newSigner(t)
	srv := startTestServer(t, signer.PublicKey())
	p := newTestPool(t, signer, nil)
	ex := p.Executor(srv.target())
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
	// A command waiting for a spare being opened returns when its context
	// ends.
	c, err := p.conn(t.Context(), srv.target())
	if err != nil {
		t.Fatal(err)
	}
	settle(p)
	c.mu.Lock()
	if sp := c.spare; sp != nil {
		c.spare = nil
		c.mu.Unlock()
		c.discard(sp)
		c.mu.Lock()
	}
	c.filling, c.filled = true, make(chan struct{}) // an open that never ends
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := ex.Run(ctx, Command{Script: "true"}); !errors.Is(err, ErrCanceled) && !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want the context's end", err)
	}
	c.mu.Lock()
	c.filling = false
	close(c.filled)
	c.mu.Unlock()
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
}
