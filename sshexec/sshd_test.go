package sshexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"golang.org/x/crypto/ssh/knownhosts"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The integration tests start real OpenSSH sshd processes ("sshd -D -e -f
// cfg") on free loopback ports, each with its own config, host key and
// authorized_keys file in a temporary directory. They need the Debian
// packages openssh-server (sshd) and procps (ps). Without sshd they skip,
// except under CI=true, where they fail.
//
// The remote user is $SSHEXEC_TEST_USER if set, else the current user; when
// running as root, the user "bakerytest" (login shell /bin/sh), which the
// tests create with useradd if it is missing. Root's own shell start-up may
// be slow (see SSH-FACTS.md), and a normal user keeps the tests honest
// about permissions.

// sshdPath returns the sshd binary or skips (fails under CI).
func sshdPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"sshd", "/usr/sbin/sshd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("sshd not found: install the openssh-server package (CI must run the real-sshd tests)")
	}
	t.Skip("sshd not found: install openssh-server to run the real-sshd tests")
	return ""
}

var (
	testUsersMu sync.Mutex
	testUsers   = map[string]error{} // users ensured to exist
)

// ensureUser creates a user with the given login shell if it is missing
// ("-p *": no password, but not locked, as sshd with UsePAM no refuses
// locked accounts; --create-home copies Debian's /etc/skel dotfiles).
func ensureUser(t testing.TB, name, shell string) {
	t.Helper()
	testUsersMu.Lock()
	defer testUsersMu.Unlock()
	err, done := testUsers[name]
	if !done {
		if _, lerr := user.Lookup(name); lerr != nil {
			out, cerr := exec.Command("useradd", "--create-home", "--shell", shell, "-p", "*", name).CombinedOutput()
			if cerr != nil {
				err = fmt.Errorf("useradd %s: %v: %s", name, cerr, out)
			}
		}
		testUsers[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
}

// testUser returns the user the tests log in as: $SSHEXEC_TEST_USER, else
// bakerytest (login shell /bin/sh, created if missing) when running as
// root, else the current user.
func testUser(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("SSHEXEC_TEST_USER"); u != "" {
		return u
	}
	if os.Geteuid() == 0 {
		ensureUser(t, "bakerytest", "/bin/sh")
		return "bakerytest"
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// sshd is one real OpenSSH server.
type sshd struct {
	t       testing.TB
	path    string
	dir     string
	cfg     string
	addr    string
	hostKey ssh.PublicKey
	user    string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func (s *sshd) logText() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "sshd.log"))
	return string(b)
}

// startSSHD starts an sshd accepting the given client keys for testUser.
// extra is appended to its config.
func startSSHD(t testing.TB, clientKeys []ssh.PublicKey, extra string) *sshd {
	t.Helper()
	return startSSHDFor(t, testUser(t), clientKeys, extra)
}

// startSSHDFor starts an sshd for user u.
func startSSHDFor(t testing.TB, u string, clientKeys []ssh.PublicKey, extra string) *sshd {
	t.Helper()
	path := sshdPath(t)
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation directory
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "sshexec-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// sshd reads authorized_keys as the user.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	priv, pubLine, err := GenerateKey("sshexec-test-host")
	if err != nil {
		t.Fatal(err)
	}
	hostKey, err := ParsePublicKey(pubLine)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "host_ed25519"), priv, 0o600); err != nil {
		t.Fatal(err)
	}
	var ak bytes.Buffer
	for _, k := range clientKeys {
		ak.Write(ssh.MarshalAuthorizedKey(k))
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ak.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	// extra may replace the listen address (at most 16 per sshd).
	listen := "127.0.0.1"
	if strings.Contains(extra, "ListenAddress") {
		listen = strings.Fields(extra[strings.Index(extra, "ListenAddress"):])[1]
	} else {
		extra = "ListenAddress 127.0.0.1\n" + extra
	}
	cfg := fmt.Sprintf(`Port %d
HostKey %s/host_ed25519
AuthorizedKeysFile %s/authorized_keys
PidFile none
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers %s
AllowTcpForwarding yes
MaxSessions 10
MaxStartups 100
LogLevel INFO
%s
`, port, dir, dir, u, extra)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &sshd{t: t, path: path, dir: dir, cfg: cfgPath, addr: net.JoinHostPort(listen, strconv.Itoa(port)), hostKey: hostKey, user: u}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *sshd) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(filepath.Join(s.dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.path, "-D", "-e", "-f", s.cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			s.t.Fatalf("sshd exited: %s", s.logText())
		default:
		}
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd not listening on %s: %s", s.addr, s.logText())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.exited = exited
}

// stop kills sshd and its per-connection sshd processes (which run in
// sessions of their own) with SIGKILL, like a crash. The users' processes
// are left to notice on their own.
func (s *sshd) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	for _, pid := range descendants(s.cmd.Process.Pid) {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "sshd" {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// descendants returns the pids of all descendants of pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func (s *sshd) target() Target {
	return Target{Addr: s.addr, User: s.user, HostKey: FormatPublicKey(s.hostKey)}
}

// realSSHD starts an sshd and a pool for it.
func realSSHD(t testing.TB) (Executor, *sshd, *Pool) {
	t.Helper()
	signer := newSigner(t)
	s := startSSHD(t, []ssh.PublicKey{signer.PublicKey()}, "")
	p := newTestPool(t, signer, nil)
	return p.Executor(s.target()), s, p
}

func TestSSHD(t *testing.T) {
	ex, _, _ := realSSHD(t)
	testExecutor(t, ex)
}

// TestSSHDBashLoginShell runs the shared suite as a user whose login shell
// is bash with Debian's default dotfiles, since the bootstrap is read by the
// login shell. It needs root (to create the user bakerybash) or
// $SSHEXEC_TEST_BASH_USER.
func TestSSHDBashLoginShell(t *testing.T) {
	u := os.Getenv("SSHEXEC_TEST_BASH_USER")
	if u == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root to create a bash user, or SSHEXEC_TEST_BASH_USER")
		}
		u = "bakerybash"
		ensureUser(t, u, "/bin/bash")
	}
	signer := newSigner(t)
	s := startSSHDFor(t, u, []ssh.PublicKey{signer.PublicKey()}, "")
	ex := newTestPool(t, signer, nil).Executor(s.target())
	testExecutor(t, ex)
}

func TestSSHDAuthAndHostKeys(t *testing.T) {
	signer := newSigner(t)
	s := startSSHD(t, []ssh.PublicKey{signer.PublicKey()}, "")

	t.Run("KeyAuth", func(t *testing.T) {
		p := newTestPool(t, signer, nil)
		res, err := p.Executor(s.target()).Run(t.Context(), Command{Script: "id -un"})
		if err != nil || strings.TrimSpace(string(res.Stdout)) != s.user {
			t.Fatalf("id -un: %q, %v", res.Stdout, err)
		}
	})
	t.Run("WrongKey", func(t *testing.T) {
		p := newTestPool(t, newSigner(t), nil)
		_, err := p.Executor(s.target()).Run(t.Context(), Command{Script: "true"})
		if !errors.Is(err, ErrAuth) || IsTerminal(err) {
			t.Fatalf("got %v, want ErrAuth", err)
		}
	})
	t.Run("PinnedMismatch", func(t *testing.T) {
		p := newTestPool(t, signer, nil)
		tg := s.target()
		_, other, _ := GenerateKey("")
		tg.HostKey = other
		_, err := p.Executor(tg).Run(t.Context(), Command{Script: "true"})
		var kerr *knownhosts.KeyError
		if !errors.Is(err, ErrHostKeyMismatch) || !IsTerminal(err) || !errors.As(err, &kerr) {
			t.Fatalf("got %v, want a terminal host key mismatch", err)
		}
	})
	t.Run("TrustOnFirstUse", func(t *testing.T) {
		var reported string
		p := newTestPool(t, signer, func(c *Config) { c.HostKeySeen = func(_ Target, k string) { reported = k } })
		tg := s.target()
		tg.HostKey = ""
		if _, err := p.Executor(tg).Run(t.Context(), Command{Script: "true"}); err != nil {
			t.Fatal(err)
		}
		got, ok := p.HostKey(tg)
		if want := FormatPublicKey(s.hostKey); !ok || got != want || reported != want {
			t.Fatalf("HostKey = %q (reported %q), want %q", got, reported, want)
		}
	})
}

func TestSSHDConcurrentCommands(t *testing.T) {
	ex, _, _ := realSSHD(t)
	const n = 50
	type out struct {
		i    int
		conn string
		err  error
	}
	outs := make(chan out, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := ex.Run(t.Context(), Command{Script: fmt.Sprintf("echo %d; echo \"$SSH_CONNECTION\"", i), Timeout: 30 * time.Second})
			lines := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
			if err == nil && (len(lines) != 2 || lines[0] != strconv.Itoa(i)) {
				err = fmt.Errorf("command %d printed %q", i, res.Stdout)
			}
			o := out{i: i, err: err}
			if len(lines) == 2 {
				o.conn = lines[1]
			}
			outs <- o
		})
	}
	wg.Wait()
	close(outs)
	conns := map[string]bool{}
	for o := range outs {
		if o.err != nil {
			t.Error(o.err)
		}
		conns[o.conn] = true
	}
	if len(conns) != 1 {
		t.Errorf("commands ran over %d connections, want 1: %v", len(conns), conns)
	}
}

func TestSSHDRestart(t *testing.T) {
	ex, s, _ := realSSHD(t)
	if _, err := ex.Run(t.Context(), Command{Script: "true"}); err != nil {
		t.Fatal(err)
	}
	marker := uniqueSleep()
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := ex.Run(t.Context(), Command{Script: "echo up; sleep " + marker, Sink: SinkFunc(func(Line) { once.Do(func() { close(running) }) })})
		done <- err
	}()
	<-running
	s.stop()
	if err := <-done; !errors.Is(err, ErrConnection) {
		t.Fatalf("command running when sshd died: got %v, want ErrConnection", err)
	}
	eventually(t, 5*time.Second, "orphaned sleep killed", func() bool { return len(liveProcs(marker)) == 0 })
	s.start()
	res, err := ex.Run(t.Context(), Command{Script: "echo back"})
	if err != nil || string(res.Stdout) != "back\n" {
		t.Fatalf("after restart: %q, %v", res.Stdout, err)
	}
}

func TestSSHDJumpHost(t *testing.T) {
	signer := newSigner(t)
	keys := []ssh.PublicKey{signer.PublicKey()}
	bastion := startSSHD(t, keys, "")
	node := startSSHD(t, keys, "")
	// The pool may dial only the bastion directly: the node is reachable
	// only through it.
	var direct []string
	var mu sync.Mutex
	p := newTestPool(t, signer, func(c *Config) {
		c.Dialer = dialerFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			direct = append(direct, addr)
			mu.Unlock()
			if addr != bastion.addr {
				return nil, fmt.Errorf("test dialer: %s is not reachable directly", addr)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		})
	})
	b := bastion.target()
	tg := node.target()
	tg.Via = &b
	ex := p.Executor(tg)
	for i := range 3 {
		res, err := ex.Run(t.Context(), Command{Script: "echo $SSH_CONNECTION"})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if f := strings.Fields(string(res.Stdout)); len(f) != 4 || f[3] != strconv.Itoa(portOf(t, node.addr)) {
			t.Fatalf("SSH_CONNECTION %q: not the node's sshd", res.Stdout)
		}
	}
	if err := ex.WriteFile(t.Context(), File{Path: filepath.Join(sharedDir(t), "f"), Content: []byte("via")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(direct) != 1 || direct[0] != bastion.addr {
		t.Errorf("direct dials %v, want one to the bastion", direct)
	}
	// A host key mismatch on the bastion is terminal for the node too.
	p2 := newTestPool(t, signer, nil)
	bad := b
	_, bad.HostKey, _ = GenerateKey("")
	tg2 := node.target()
	tg2.Via = &bad
	if _, err := p2.Executor(tg2).Run(t.Context(), Command{Script: "true"}); !IsTerminal(err) {
		t.Errorf("bastion key mismatch: %v", err)
	}
}

func portOf(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func TestSSHDValuesNotOnCommandLine(t *testing.T) {
	ex, _, _ := realSSHD(t)
	canary := fmt.Sprintf("canary-%09d", time.Now().Nanosecond())
	dir := sharedDir(t)
	flag := filepath.Join(dir, "checked")
	file := filepath.Join(dir, canary+"-file")
	script := fmt.Sprintf(`# script text with %s
echo "env: $SECRET"
ps -eo args
i=0; while [ ! -e %s ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
`, canary, mustQuote(flag))
	var c collector
	checked := make(chan []string, 1)
	sink := SinkFunc(func(l Line) {
		c.Line(l)
		if strings.HasPrefix(l.Text, "env: ") {
			// The command is running: look at every command line now.
			out, err := exec.Command("ps", "-eo", "args").Output()
			if err != nil {
				t.Error(err)
			}
			var hits []string
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, canary) {
					hits = append(hits, line)
				}
			}
			checked <- hits
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := ex.Run(t.Context(), Command{Script: script, Env: map[string]string{"SECRET": canary}, Sink: sink, Timeout: 20 * time.Second})
		done <- err
	}()
	hits := <-checked
	os.WriteFile(flag, nil, 0o644)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(hits) > 0 {
		t.Errorf("ps shows the canary on command lines: %q", hits)
	}
	var envSeen bool
	for _, l := range c.lines {
		if l.Text == "env: "+canary {
			envSeen = true
		} else if strings.Contains(l.Text, canary) {
			t.Errorf("the node's ps shows the canary: %q", l.Text)
		}
	}
	if !envSeen {
		t.Error("the script did not get the environment value")
	}
	// File uploads keep their content and path off command lines too.
	if err := ex.WriteFile(t.Context(), File{Path: file, Content: []byte(canary)}); err != nil {
		t.Fatal(err)
	}
}
