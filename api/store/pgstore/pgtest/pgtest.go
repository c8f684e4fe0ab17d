// Package pgtest gives tests a fresh, empty PostgreSQL database per call of
// DatabaseURL. It is for tests only.
//
// With BAKERY_TEST_DATABASE_URL set (a postgres:// URL of a role allowed to
// CREATE DATABASE), every call creates bakery_test_<random> on that server
// and drops it when the test ends. Otherwise the first call starts one
// throwaway cluster for the whole test process (initdb + pg_ctl in a temp
// dir, a free loopback port, its unix socket in the temp dir, fsync off);
// the package's TestMain must call Main so that the cluster is stopped when
// the tests finish.
//
// Without PostgreSQL installed, tests are skipped with a hint on how to
// install it — except under CI (CI=true), where they fail: CI must never
// pass by skipping the database tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points tests at an existing server.
const EnvURL = "BAKERY_TEST_DATABASE_URL"

const installHint = "install PostgreSQL (Debian/Ubuntu: apt-get install -y postgresql) " +
	"or set " + EnvURL + " to a postgres:// URL of a role that may CREATE DATABASE"

var (
	mainCalled atomic.Bool
	once       sync.Once
	cl         *cluster
	clErr      error
	clSkip     bool // PostgreSQL is not installed
)

// Main runs the tests of a package that uses DatabaseURL and then stops the
// throwaway cluster, if one was started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if cl != nil {
		if err := cl.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop cluster: %v\n", err)
		}
	}
	os.Exit(code)
}

// DatabaseURL returns the URL of a new, empty database that is dropped when
// t ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		if !mainCalled.Load() {
			t.Fatal("pgtest: the package's TestMain must call pgtest.Main(m), which stops the throwaway PostgreSQL cluster")
		}
		once.Do(func() { cl, clErr = startCluster() })
		if clErr != nil {
			if clSkip && os.Getenv("CI") != "true" {
				t.Skipf("pgtest: %v; %s", clErr, installHint)
			}
			t.Fatalf("pgtest: %v; %s", clErr, installHint)
		}
		base = cl.url
	}
	u, err := createDatabase(t, base)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

func createDatabase(t testing.TB, base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%s must be a postgres:// URL", EnvURL)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "bakery_test_" + hex.EncodeToString(b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", redact(u), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// FORCE ends sessions a test forgot to close.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	d := *u
	d.Path = "/" + name
	return d.String(), nil
}

func redact(u *url.URL) string { return u.Redacted() }

// cluster is a throwaway PostgreSQL started by this process.
type cluster struct {
	dir     string // temp dir: data/, sock/, log
	pgCtl   string
	cred    *syscall.Credential // set when running as root
	url     string
	stopped bool
}

// binDir finds the directory holding initdb and pg_ctl.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func startCluster() (*cluster, error) {
	bin, err := binDir()
	if err != nil {
		clSkip = true
		return nil, err
	}
	dir, err := os.MkdirTemp(tempRoot(), "bakery-pg-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, pgCtl: filepath.Join(bin, "pg_ctl")}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user
		// (created by Debian's postgresql package), owning the temp dir.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, int(uid), int(gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := c.start(bin); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// tempRoot is where the cluster's directory goes: the usual temp dir,
// unless the unix socket path would be too long there or (as root) the
// postgres user could not reach it; then /tmp.
func tempRoot() string {
	root := os.TempDir()
	if len(root) > 60 {
		return "/tmp"
	}
	if os.Geteuid() == 0 {
		for d := root; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
				return "/tmp"
			}
		}
	}
	return root
}

func (c *cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *cluster) run(name string, args ...string) error {
	out, err := c.command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *cluster) start(bin string) error {
	data := filepath.Join(c.dir, "data")
	sock := filepath.Join(c.dir, "sock")
	if err := c.run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return err
	}
	if err := c.run("mkdir", "-p", sock); err != nil {
		return err
	}
	var lastErr error
	for range 3 { // the free port may be taken before postgres binds it
		port, err := freePort()
		if err != nil {
			return err
		}
		conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
`, port, sock)
		if err := appendFile(filepath.Join(data, "postgresql.auto.conf"), conf); err != nil {
			return err
		}
		lastErr = c.run(c.pgCtl, "-D", data, "-l", filepath.Join(c.dir, "postgres.log"), "-w", "-t", "60", "start")
		if lastErr == nil {
			c.url = fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", url.QueryEscape(sock), port)
			c.watchdog(data)
			return nil
		}
		log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
		lastErr = fmt.Errorf("%v\n%s", lastErr, log)
	}
	return lastErr
}

// watchdog starts a process that stops the cluster and removes its
// directory once this test process is gone, even if Main never got to do
// it (a test timeout panics and exits the process).
func (c *cluster) watchdog(data string) {
	script := fmt.Sprintf(`while [ -d /proc/%d ]; do sleep 1; done; %s -D %s -m immediate stop >/dev/null 2>&1; rm -rf %s`,
		os.Getpid(), shellQuote(c.pgCtl), shellQuote(data), shellQuote(c.dir))
	cmd := c.command("/bin/sh", "-c", script)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err == nil {
		go cmd.Wait() //nolint:errcheck // reaped if it ends while we run
	}
}

func (c *cluster) stop() error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	var err error
	if _, statErr := os.Stat(filepath.Join(c.dir, "data", "postmaster.pid")); statErr == nil {
		err = c.run(c.pgCtl, "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	}
	if rmErr := os.RemoveAll(c.dir); err == nil {
		err = rmErr
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func appendFile(name, s string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Restart stops the throwaway cluster (fast shutdown: every connection is
// cut) and starts it again on the same port, as a database restart in
// production. It fails the test when the database is not pgtest's own
// (EnvURL set) or no cluster was started.
func Restart(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvURL) != "" || cl == nil {
		t.Fatal("pgtest: Restart needs the throwaway cluster (unset " + EnvURL + " and call DatabaseURL first)")
	}
	data := filepath.Join(cl.dir, "data")
	if err := cl.run(cl.pgCtl, "-D", data, "-l", filepath.Join(cl.dir, "postgres.log"), "-m", "fast", "-w", "-t", "60", "restart"); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
}
