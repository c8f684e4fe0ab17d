package sshexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Target is a node to connect to. A Pool keeps one connection per distinct
// Target: all fields, Via included, make up the key.
type Target struct {
	Addr string // "host:port"
	User string
	// HostKey is the node's pinned host key in authorized_keys format. Empty
	// means trust on first use: the first key seen is accepted, reported
	// through Config.HostKeySeen and Pool.HostKey, and required from then on
	// for the Pool's lifetime.
	HostKey string
	// Via, if not nil, is a jump host: the connection to Addr is tunnelled
	// through the (pooled) connection to Via, as with ssh -J.
	Via *Target
}

func (t Target) String() string {
	s := t.User + "@" + t.Addr
	if t.Via != nil {
		s += " via " + t.Via.String()
	}
	return s
}

// key identifies the target in the pool.
func (t Target) key() string {
	var b strings.Builder
	for p := &t; p != nil; p = p.Via {
		fmt.Fprintf(&b, "%q %q %q;", p.User, p.Addr, strings.TrimSpace(p.HostKey))
	}
	return b.String()
}

// Dialer opens the transport under SSH. *net.Dialer satisfies it, and so do
// SOCKS dialers and userspace WireGuard stacks; [Pool.ViaDialer] tunnels
// through a jump host.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// TCPDialer returns the default Dialer: direct TCP with TCP keepalive.
func TCPDialer() Dialer { return &net.Dialer{KeepAlive: 15 * time.Second} }

// Config configures a Pool. Zero durations and limits take the defaults
// noted.
type Config struct {
	// Signer is Bakery's private key (see ParsePrivateKey). Required.
	Signer ssh.Signer
	// Dialer opens connections to targets without Via. Default TCPDialer().
	Dialer Dialer
	// HostKeySeen, if not nil, is called after the first successful
	// handshake with a target that has no pinned HostKey, with the key
	// accepted (authorized_keys format), so that the caller can pin it.
	HostKeySeen func(t Target, hostKey string)
	// MaxSessions bounds the sessions open at once on one connection;
	// further commands queue. Default 10, sshd's MaxSessions.
	MaxSessions int
	// MaxDials bounds the connections being set up at once, pool-wide.
	// Default 8 (below sshd's MaxStartups of 10).
	MaxDials int
	// DialTimeout bounds opening the transport. Default 10 s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the SSH handshake and authentication.
	// Default 15 s.
	HandshakeTimeout time.Duration
	// KeepaliveInterval is the period of keepalive requests; a connection
	// that does not answer within another interval is closed. Default 15 s.
	KeepaliveInterval time.Duration
	// IdleTimeout closes connections with no session for that long.
	// Default 5 min.
	IdleTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Dialer == nil {
		c.Dialer = TCPDialer()
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 10
	}
	if c.MaxDials <= 0 {
		c.MaxDials = 8
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 15 * time.Second
	}
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = 15 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
}

// Pool keeps SSH connections to nodes, one per Target, each carrying many
// sessions, and hands out Executors that use them. Dead connections are
// dropped and redialled for the next command; idle ones are closed. A Pool
// is safe for concurrent use.
type Pool struct {
	cfg     Config
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	dialSem chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	conns  map[string]*poolConn
	seen   map[string]ssh.PublicKey // trust-on-first-use keys by target key
	closed bool
}

// NewPool returns a Pool. It fails if cfg.Signer is nil.
func NewPool(cfg Config) (*Pool, error) {
	if cfg.Signer == nil {
		return nil, errors.New("sshexec: Config.Signer is required")
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		dialSem: make(chan struct{}, cfg.MaxDials),
		conns:   make(map[string]*poolConn),
		seen:    make(map[string]ssh.PublicKey),
	}, nil
}

// Executor returns an Executor for t. It is cheap: the connection is
// dialled by the first command and shared with every Executor for the same
// Target.
func (p *Pool) Executor(t Target) Executor { return &sshExecutor{p: p, t: t} }

// HostKey returns the host key required of t: its pinned key, or the key
// accepted on first use. ok is false before the first handshake of an
// unpinned target.
func (p *Pool) HostKey(t Target) (hostKey string, ok bool) {
	if s := strings.TrimSpace(t.HostKey); s != "" {
		return s, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := p.seen[t.key()]; k != nil {
		return FormatPublicKey(k), true
	}
	return "", false
}

// Forget closes t's connection (running commands fail) and forgets a host
// key accepted on first use, e.g. after the node was deleted or re-keyed.
func (p *Pool) Forget(t Target) {
	k := t.key()
	p.mu.Lock()
	c := p.conns[k]
	delete(p.conns, k)
	delete(p.seen, k)
	p.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// Close closes all connections and ends the Pool's goroutines. Running
// commands fail; their remote processes are killed by the nodes' watchers.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	p.cancel()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
	return nil
}

// ViaDialer returns a Dialer that opens TCP connections from the jump host
// via, through its pooled connection (a direct-tcpip channel). The pool
// uses it for targets with Via set.
func (p *Pool) ViaDialer(via Target) Dialer { return &viaDialer{p: p, via: via} }

type viaDialer struct {
	p   *Pool
	via Target
}

func (d *viaDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.p.conn(ctx, d.via)
	if err != nil {
		return nil, fmt.Errorf("jump host %s: %w", d.via, err)
	}
	if !c.use() {
		return nil, fmt.Errorf("%w: jump host %s: connection closed", ErrConnection, d.via)
	}
	nc, err := c.client.DialContext(ctx, network, addr)
	if err != nil {
		c.unuse()
		return nil, fmt.Errorf("%w: dial %s through %s: %w", ErrConnection, addr, d.via, err)
	}
	return &tunnelConn{Conn: nc, release: c.unuse}, nil
}

// tunnelConn counts as a user of the jump host's connection until closed.
type tunnelConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *tunnelConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// conn returns the live connection for t, dialling it if needed. Callers
// waiting for the same dial share its outcome.
func (p *Pool) conn(ctx context.Context, t Target) (*poolConn, error) {
	k := t.key()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		c := p.conns[k]
		if c == nil {
			c = &poolConn{
				p:        p,
				key:      k,
				target:   t,
				ready:    make(chan struct{}),
				done:     make(chan struct{}),
				sessions: make(chan struct{}, p.cfg.MaxSessions),
			}
			p.conns[k] = c
			p.wg.Add(1)
			go c.dial()
		}
		p.mu.Unlock()
		select {
		case <-c.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if c.err != nil {
			return nil, c.err
		}
		select {
		case <-c.done:
			p.drop(c) // dead: dial a new one
			continue
		default:
		}
		return c, nil
	}
}

func (p *Pool) drop(c *poolConn) {
	p.mu.Lock()
	if p.conns[c.key] == c {
		delete(p.conns, c.key)
	}
	p.mu.Unlock()
}

// poolConn is one SSH connection of the pool.
type poolConn struct {
	p        *Pool
	key      string
	target   Target
	ready    chan struct{} // closed when the dial has finished
	err      error         // the dial's error, set before ready closes
	client   *ssh.Client
	sessions chan struct{} // semaphore of open sessions
	done     chan struct{} // closed when the connection is gone

	mu       sync.Mutex
	users    int // open sessions and tunnels through this connection
	idle     *time.Timer
	gone     bool
	doneOnce sync.Once
	// A spare session: opened ahead of the next command, its bootstrap
	// already started and waiting for a frame, so that a command does not
	// wait for sshd to start the login shell and /bin/sh (≈ 3 ms of CPU on
	// the node). It holds a session slot but does not count as a user
	// (the idle timeout still closes the connection).
	spare   *sshProc
	filling bool          // a spare is being opened
	filled  chan struct{} // closed when that open has finished
	waiter  bool          // a command waits for the spare being opened
}

func (c *poolConn) dial() {
	defer c.p.wg.Done()
	client, err := c.p.handshake(c.target, c.key)
	if err != nil {
		c.err = fmt.Errorf("connect %s: %w", c.target, err)
		c.p.drop(c)
		c.doneOnce.Do(func() { close(c.done) })
		close(c.ready)
		return
	}
	c.client = client
	c.mu.Lock()
	c.idle = time.AfterFunc(c.p.cfg.IdleTimeout, c.idleCheck)
	c.mu.Unlock()
	close(c.ready)
	c.p.wg.Add(2)
	go func() {
		defer c.p.wg.Done()
		_ = client.Wait()
		c.markGone()
	}()
	go c.keepalive()
}

func (c *poolConn) markGone() {
	c.mu.Lock()
	c.gone = true
	if c.idle != nil {
		c.idle.Stop()
	}
	spare := c.spare
	c.spare = nil
	c.mu.Unlock()
	if spare != nil {
		c.discard(spare)
	}
	c.doneOnce.Do(func() { close(c.done) })
	c.p.drop(c)
}

// close closes the connection; running sessions fail.
func (c *poolConn) close() {
	<-c.ready
	if c.client != nil {
		c.client.Close()
	}
	c.markGone()
}

func (c *poolConn) idleCheck() {
	c.mu.Lock()
	idle := c.users == 0 && !c.gone
	c.mu.Unlock()
	if idle {
		c.close()
	}
}

// use counts a session or tunnel; false if the connection is gone.
func (c *poolConn) use() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return false
	}
	c.users++
	c.idle.Stop()
	return true
}

func (c *poolConn) unuse() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users--
	if c.users == 0 && !c.gone {
		c.idle.Reset(c.p.cfg.IdleTimeout)
	}
}

// acquire returns the spare session (counted as a user, its slot now the
// command's), or else takes a session slot for a new session (sp nil),
// queueing while MaxSessions are open. When a spare is being opened and no
// other command waits for it, it waits for that spare rather than opening
// a session of its own.
func (c *poolConn) acquire(ctx context.Context) (sp *sshProc, err error) {
	for {
		sp, wait := c.takeSpare(ctx)
		if sp != nil {
			return sp, nil
		}
		if wait == nil {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
		case <-c.done:
		}
		c.mu.Lock()
		c.waiter = false
		c.mu.Unlock()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	select {
	case c.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, io.EOF
	}
	if !c.use() {
		<-c.sessions
		return nil, io.EOF
	}
	return nil, nil
}

// takeSpare takes the spare session if there is a live one. Otherwise, if
// a spare is being opened and nobody waits for it yet, it returns a channel
// closed when that open has finished, and the caller is the one waiting.
func (c *poolConn) takeSpare(ctx context.Context) (*sshProc, <-chan struct{}) {
	c.mu.Lock()
	sp := c.spare
	c.spare = nil
	if sp == nil {
		defer c.mu.Unlock()
		if c.filling && !c.waiter && !c.gone {
			c.waiter = true
			return nil, c.filled
		}
		return nil, nil
	}
	if c.gone {
		c.mu.Unlock()
		c.discard(sp)
		return nil, nil
	}
	c.users++
	c.idle.Stop()
	c.mu.Unlock()
	if !sp.probe(ctx) {
		c.unuse()
		c.discard(sp)
		return nil, nil
	}
	return sp, nil
}

// discard closes a spare session that no command took. Its slot is freed
// once the server has closed the channel too: sshd counts a session against
// MaxSessions until then.
func (c *poolConn) discard(sp *sshProc) {
	_ = sp.ch.Close()
	go func() {
		<-sp.ended // at the latest when the connection closes
		<-c.sessions
	}()
}

// fill opens a spare session in the background, if there is none, a slot
// is free and the connection is up.
func (c *poolConn) fill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.spare != nil || c.filling || c.gone {
		return
	}
	select {
	case c.sessions <- struct{}{}:
	default:
		return
	}
	c.filling = true
	filled := make(chan struct{})
	c.filled = filled
	c.p.wg.Add(1)
	go func() {
		defer c.p.wg.Done()
		sp, err := startSession(c)
		c.mu.Lock()
		c.filling = false
		ok := err == nil && !c.gone
		if ok {
			c.spare = sp
		}
		close(filled)
		c.mu.Unlock()
		switch {
		case ok:
		case sp != nil:
			c.discard(sp)
		default:
			<-c.sessions
		}
	}()
}

func (c *poolConn) release() {
	c.unuse()
	<-c.sessions
}

func (c *poolConn) keepalive() {
	defer c.p.wg.Done()
	every := c.p.cfg.KeepaliveInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if !c.alive(every) {
			c.close()
			return
		}
	}
}

// alive sends a keepalive request and reports whether it was answered
// within timeout.
func (c *poolConn) alive(timeout time.Duration) bool {
	answered := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-answered:
		return err == nil
	case <-t.C:
		return false
	case <-c.done:
		return false
	}
}

// handshake opens the transport and the SSH connection for t, verifying
// its host key and classifying failures.
func (p *Pool) handshake(t Target, key string) (*ssh.Client, error) {
	select {
	case p.dialSem <- struct{}{}:
	case <-p.ctx.Done():
		return nil, ErrClosed
	}
	defer func() { <-p.dialSem }()

	var want ssh.PublicKey
	if s := strings.TrimSpace(t.HostKey); s != "" {
		k, err := ParsePublicKey(s)
		if err != nil {
			return nil, invalidf("target %s: pinned host key: %v", t, err)
		}
		want = k
	} else {
		p.mu.Lock()
		want = p.seen[key]
		p.mu.Unlock()
	}

	dialer := p.cfg.Dialer
	if t.Via != nil {
		dialer = p.ViaDialer(*t.Via)
	}
	dctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	nc, err := dialer.DialContext(dctx, "tcp", t.Addr)
	cancel()
	if err != nil {
		if errors.Is(err, ErrConnection) || errors.Is(err, ErrAuth) || errors.Is(err, ErrHostKeyMismatch) || IsTerminal(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrConnection, err)
	}
	setQuickAck(nc)

	var (
		keyErr     error
		seen       ssh.PublicKey
		authTried  bool
		mu         sync.Mutex
		deadline   = time.Now().Add(p.cfg.HandshakeTimeout)
		stopCancel = context.AfterFunc(p.ctx, func() { nc.Close() })
	)
	defer stopCancel()
	_ = nc.SetDeadline(deadline)
	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			mu.Lock()
			authTried = true
			mu.Unlock()
			return []ssh.Signer{p.cfg.Signer}, nil
		})},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			mu.Lock()
			defer mu.Unlock()
			if want != nil && !bytes.Equal(want.Marshal(), k.Marshal()) {
				keyErr = &HostKeyError{Addr: t.Addr, Want: want, Got: k}
				return keyErr
			}
			seen = k
			return nil
		},
		Timeout: p.cfg.HandshakeTimeout,
	}
	if want != nil {
		cfg.HostKeyAlgorithms = algorithmsFor(want)
	}
	cc, chans, reqs, err := ssh.NewClientConn(nc, t.Addr, cfg)
	if err != nil {
		nc.Close()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case keyErr != nil:
			return nil, keyErr
		case authTried && seen != nil && !errors.Is(err, io.EOF) && !isNetError(err):
			return nil, fmt.Errorf("%w: %w", ErrAuth, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrConnection, err)
	}
	_ = nc.SetDeadline(time.Time{})
	client := ssh.NewClient(cc, chans, reqs)

	if want == nil {
		p.mu.Lock()
		if prev := p.seen[key]; prev == nil {
			p.seen[key] = seen
		}
		p.mu.Unlock()
		if p.cfg.HostKeySeen != nil {
			p.cfg.HostKeySeen(t, FormatPublicKey(seen))
		}
	}
	return client, nil
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// algorithmsFor returns the host key algorithms that yield key k, so that a
// server with several host keys presents the pinned one.
func algorithmsFor(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{k.Type()}
}
