package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a subprocess's output for the test to read while
// it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBinary builds the bakery binary, runs 'bakery server' on a free port
// with a temporary data directory, drives it with 'bakery apply' and
// 'bakery get' subprocesses, then stops it with SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	home := isolate(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bakery")
	build := exec.CommandContext(t.Context(), goTool, "build", "-o", bin,
		"-ldflags", "-X main.version=v1.2.3-test -X main.commit=c0ffee", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(tmp, "data")
	env := append(os.Environ(), "XDG_CONFIG_HOME="+home, "BAKERY_SERVER=", "BAKERY_TOKEN=", "DATABASE_URL=")

	srv := exec.Command(bin, "server", "--listen", "127.0.0.1:0", "--data", data, "--log-format", "json", "--allow-local-nodes")
	srv.Env = env
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var logs lockedBuffer
	urls := make(chan string, 1)
	go func() {
		// Read the banner's URL, then keep collecting; Wait only after
		// the pipe is drained.
		re := regexp.MustCompile(`serving on (http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		exited <- srv.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Process.Kill()
			<-exited
		}
	})

	var url string
	select {
	case url = <-urls:
	case err := <-exited:
		stopped = true
		t.Fatalf("server exited: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("no banner within 30s:\n%s", logs.String())
	}
	waitReady(t, url)

	tokenBytes, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	// The banner is written line by line while the server already
	// answers: wait (bounded) for the login command.
	want := "bakery login --server " + url + " --token " + token
	banner := logs.String()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(banner, want) && time.Now().Before(deadline); banner = logs.String() {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(banner, want) {
		t.Errorf("the banner lacks the login command:\n%s", banner)
	}
	if fi, err := os.Stat(filepath.Join(data, "admin-token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-token file: %v, %v; want mode 0600", fi.Mode(), err)
	}

	cli := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, bin, args...)
		c.Env = env
		c.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		c.Stdout, c.Stderr = &out, &errOut
		err := c.Run()
		code := 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("bakery %v: %v", args, err)
		}
		return out.String(), errOut.String(), code
	}

	if out, errOut, code := cli("", "login", "--server", url, "--token", token); code != 0 {
		t.Fatalf("login: exit %d\n%s%s", code, out, errOut)
	}
	dir := manifestDir(t)
	out, errOut, code := cli("", "apply", "-f", dir)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, errOut)
	}
	wantLines(t, out, "node.bakery.dev/web-1 created", "node.bakery.dev/web-2 created", "deployment.bakery.dev/hello created")
	out, _, code = cli("", "get", "deployments")
	if code != 0 || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "hello") {
		t.Errorf("get deployments: exit %d\n%s", code, out)
	}
	y, _, _ := cli("", "get", "deploy", "hello", "-o", "yaml")
	if out, errOut, code := cli(y, "apply", "-f", "-"); code != 0 || out != "deployment.bakery.dev/hello unchanged\n" {
		t.Errorf("re-apply: exit %d\n%s%s", code, out, errOut)
	}
	writeFile(t, filepath.Join(dir, "apps", "hello.yaml"), strings.Replace(appYAML, "node server.js", "node main.js", 1))
	if out, _, code := cli("", "diff", "-f", dir); code != 1 || !strings.Contains(out, "+    command: node main.js") {
		t.Errorf("diff: exit %d, want 1\n%s", code, out)
	}
	if _, _, code := cli("", "get", "deploy", "hello", "--token", "bkr_wrong"); code != 1 {
		t.Errorf("wrong token: exit %d, want 1", code)
	}
	if out, _, _ := cli("", "version"); !strings.Contains(out, "Client Version: v1.2.3-test (commit c0ffee") || !strings.Contains(out, "Server Version: v1.2.3-test") {
		t.Errorf("version:\n%s", out)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("server did not stop after SIGTERM:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"server stopped"`) {
		t.Errorf("no clean shutdown logged:\n%s", logs.String())
	}
}

// waitReady polls /readyz until it answers 200, for at most 30 seconds.
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not ready after 30s: %v", url, err)
		}
		<-tick.C
	}
}
