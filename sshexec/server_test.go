package sshexec

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testServer is an in-process SSH server (x/crypto/ssh server side). It runs
// each exec request with /bin/sh -c in a new session, like sshd without a
// pty, so the bootstrap and its watcher really run.
type testServer struct {
	t          testing.TB
	addr       string
	hostSigner ssh.Signer
	authorized ssh.PublicKey
	ln         net.Listener

	mu        sync.Mutex
	conns     map[*ssh.ServerConn]bool
	accepted  atomic.Int64 // connections authenticated
	open      atomic.Int64 // sessions open now
	maxOpen   atomic.Int64 // most sessions open at once
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startTestServer serves on a free loopback port, accepting clientKey.
func startTestServer(t testing.TB, clientKey ssh.PublicKey) *testServer {
	t.Helper()
	return startTestServerAt(t, clientKey, "127.0.0.1:0")
}

// startTestServerAt serves on addr.
func startTestServerAt(t testing.TB, clientKey ssh.PublicKey, addr string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, addr: ln.Addr().String(), hostSigner: newSigner(t), authorized: clientKey, ln: ln, conns: map[*ssh.ServerConn]bool{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) close() {
	s.closeOnce.Do(s.doClose)
}

func (s *testServer) doClose() {
	s.ln.Close()
	s.dropAll()
	s.wg.Wait()
}

// dropAll closes every connection, like a crashed sshd.
func (s *testServer) dropAll() {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

func (s *testServer) serve() {
	defer s.wg.Done()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), s.authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(s.hostSigner)
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
			if err != nil {
				nc.Close()
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns[sc] = true
			s.mu.Unlock()
			go ssh.DiscardRequests(reqs)
			for nch := range chans {
				if nch.ChannelType() != "session" {
					nch.Reject(ssh.UnknownChannelType, "only sessions")
					continue
				}
				ch, creqs, err := nch.Accept()
				if err != nil {
					continue
				}
				s.wg.Add(1)
				go s.session(ch, creqs)
			}
			s.mu.Lock()
			delete(s.conns, sc)
			s.mu.Unlock()
		}()
	}
}

func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer s.wg.Done()
	n := s.open.Add(1)
	for {
		m := s.maxOpen.Load()
		if n <= m || s.maxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	defer ch.Close()
	defer s.open.Add(-1) // before the close the client waits for
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		if len(req.Payload) < 4 {
			req.Reply(false, nil)
			return
		}
		command := string(req.Payload[4:])
		req.Reply(true, nil)
		go ssh.DiscardRequests(reqs)
		code := s.run(ch, command)
		status := make([]byte, 4)
		binary.BigEndian.PutUint32(status, uint32(code))
		ch.SendRequest("exit-status", false, status)
		return
	}
}

func (s *testServer) run(ch ssh.Channel, command string) int {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 255
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return 255
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return 255
	}
	defer outR.Close()
	defer errR.Close()
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		return 255
	}
	// Like sshd: client data goes to the command's stdin; EOF or a closed
	// channel closes it. The child is reaped as soon as it exits; the exit
	// status is sent once its output is drained too.
	go func() {
		io.Copy(stdin, ch)
		stdin.Close()
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var out sync.WaitGroup
	out.Go(func() { io.Copy(ch, outR) })
	out.Go(func() { io.Copy(ch.Stderr(), errR) })
	out.Wait()
	err = <-waited
	ch.CloseWrite()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return 255
	}
	return 0
}

// target returns a Target for s with its host key pinned.
func (s *testServer) target() Target {
	return Target{Addr: s.addr, User: "test", HostKey: FormatPublicKey(s.hostSigner.PublicKey())}
}

// newTestPool returns a pool using signer, closed at cleanup.
func newTestPool(t testing.TB, signer ssh.Signer, mod func(*Config)) *Pool {
	t.Helper()
	cfg := Config{Signer: signer}
	if mod != nil {
		mod(&cfg)
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// inProcess starts a server and returns an Executor for it.
func inProcess(t testing.TB) (Executor, *testServer, *Pool) {
	t.Helper()
	signer := newSigner(t)
	srv := startTestServer(t, signer.PublicKey())
	p := newTestPool(t, signer, nil)
	return p.Executor(srv.target()), srv, p
}
