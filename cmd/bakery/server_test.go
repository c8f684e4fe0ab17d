package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/sealed"
)

// startServerCmd runs 'bakery server' in-process until the returned stop
// function is called; it returns the served URL, the stderr collected so
// far (a func, since it grows) and stop, which waits for the exit code.
func startServerCmd(t *testing.T, args ...string) (url string, stderr func() string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"server", "--listen", "127.0.0.1:0"}, args...), strings.NewReader(""), &lockedBuffer{}, &errOut)
	}()
	re := regexp.MustCompile(`serving on (http://\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := re.FindStringSubmatch(errOut.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("server exited with %d:\n%s", code, errOut.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no banner after 30s:\n%s", errOut.String())
		}
	}
	waitReady(t, url)
	stopped := false
	stop = func() int {
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(40 * time.Second):
			t.Fatalf("server did not stop:\n%s", errOut.String())
			return -1
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return url, errOut.String, stop
}

func TestServerCommand(t *testing.T) {
	isolate(t)
	data := filepath.Join(t.TempDir(), "data")

	url, stderr, stop := startServerCmd(t, "--data", data, "--log-level", "warn", "--allow-local-nodes")
	tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	banner := stderr()
	if strings.Count(banner, token) != 2 || !strings.Contains(banner, "bakery login --server "+url+" --token "+token) {
		t.Errorf("first start: want the token and the login command once each:\n%s", banner)
	}
	if strings.Contains(banner, "level=INFO") {
		t.Errorf("--log-level warn logged at info:\n%s", banner)
	}
	must(t, "", "apply", "-f", manifestDir(t), "--server", url, "--token", token)
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after the context ended:\n%s", code, stderr())
	}

	// A restart keeps the objects and the token, and prints no token.
	url, stderr, stop = startServerCmd(t, "--data", data, "--log-format", "json")
	if strings.Contains(stderr(), "bkr_") || strings.Contains(stderr(), "bakery login") {
		t.Errorf("second start printed a token:\n%s", stderr())
	}
	if !strings.Contains(stderr(), `"msg":"starting"`) {
		t.Errorf("--log-format json: no JSON log:\n%s", stderr())
	}
	wantLines(t, must(t, "", "get", "deploy", "-o", "name", "--server", url, "--token", token), "deployment.bakery.dev/hello")
	// Started without --allow-local-nodes: a local Node is refused, the
	// answer names the flag.
	local := filepath.Join(t.TempDir(), "local.yaml")
	writeFile(t, local, "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: self}\nspec: {local: true}\n")
	if r := bakery(t, "", "apply", "-f", local, "--server", url, "--token", token); r.code == 0 ||
		!strings.Contains(r.stderr, "spec.local") || !strings.Contains(r.stderr, "--allow-local-nodes") {
		t.Errorf("a local node on a server without --allow-local-nodes: exit %d\n%s", r.code, r.stderr)
	}
	if code := stop(); code != 0 {
		t.Errorf("second stop: exit %d", code)
	}

	for _, args := range [][]string{
		{"--log-level", "loud"}, {"--log-format", "xml"}, {"--max-body", "lots"}, {"--listen", "127.0.0.1:99999"},
	} {
		r := bakery(t, "", append([]string{"server", "--data", data, "--listen", "127.0.0.1:0"}, args...)...)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "error: ") {
			t.Errorf("server %v: %+v, want exit 1 with an error", args, r)
		}
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("BAKERY_DATA", "/srv/bakery")
	if d := defaultDataDir(); d != "/srv/bakery" {
		t.Errorf("with BAKERY_DATA: %q", d)
	}
	t.Setenv("BAKERY_DATA", "")
	t.Setenv("XDG_DATA_HOME", "/xdg")
	if d := defaultDataDir(); d != "/xdg/bakery" {
		t.Errorf("with XDG_DATA_HOME: %q", d)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d := defaultDataDir(); d != "/home/u/.local/share/bakery" {
		t.Errorf("with HOME: %q", d)
	}
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestServerPostgres runs 'bakery server' on PostgreSQL: the admin token
// file still goes to <data>, and the version reports the postgres store.
func TestServerPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	isolate(t)
	dbURL := pgtest.DatabaseURL(t)
	data := filepath.Join(t.TempDir(), "data")
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("BAKERY_ENCRYPTION_KEY", sealed.NewKey())
	t.Setenv("BAKERY_ALLOW_LOCAL_NODES", "true") // nodesYAML has one
	url, stderr, stop := startServerCmd(t, "--data", data)
	tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatalf("admin token file: %v\n%s", err, stderr())
	}
	if strings.Contains(stderr(), dbURL) {
		t.Errorf("the database URL is printed:\n%s", stderr())
	}
	token := strings.TrimSpace(string(tok))
	t.Setenv("BAKERY_SERVER", url)
	t.Setenv("BAKERY_TOKEN", token)
	wantLines(t, must(t, "", "apply", "-f", manifestDir(t)),
		"node.bakery.dev/web-1 created", "node.bakery.dev/web-2 created", "deployment.bakery.dev/hello created")
	if out := must(t, "", "version"); !strings.Contains(out, "postgres store") {
		t.Errorf("version: %q", out)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d:\n%s", code, stderr())
	}
	if _, err := os.Stat(filepath.Join(data, "nodes")); err == nil {
		t.Errorf("a file store was created in %s", data)
	}
	if _, err := os.Stat(filepath.Join(data, "ssh")); err == nil {
		t.Errorf("the SSH key pair was written to %s with the postgres store", data)
	}
}

// bootstrapKey returns the public key in the bootstrap command of node
// name on the server at url.
func bootstrapKey(t *testing.T, url, token, name string) string {
	t.Helper()
	line := strings.TrimSpace(must(t, "", "node", "bootstrap-command", name, "--server", url, "--token", token))
	_, key, ok := strings.Cut(line, "--key '")
	if !ok || !strings.HasPrefix(key, "ssh-ed25519 AAAA") {
		t.Fatalf("bootstrap command %q has no key", line)
	}
	return strings.TrimSuffix(key, "'")
}

// Servers sharing a database share one SSH key pair, sealed with the
// encryption key in the database; a server without the key, or with
// another one, refuses to start and says why.
func TestServerPostgresSharedIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	isolate(t)
	dbURL := pgtest.DatabaseURL(t)
	t.Setenv("DATABASE_URL", dbURL)
	tmp := t.TempDir()
	serve := func(data string, args ...string) result {
		return bakery(t, "", append([]string{"server", "--listen", "127.0.0.1:0", "--data", filepath.Join(tmp, data)}, args...)...)
	}

	// No key: a clear error on how to make one, before the database is
	// touched.
	r := serve("nokey")
	if r.code != 1 || !strings.Contains(r.stderr, "BAKERY_ENCRYPTION_KEY") || !strings.Contains(r.stderr, "head -c 32 /dev/urandom | base64") {
		t.Fatalf("server without a key: exit %d\n%s", r.code, r.stderr)
	}
	t.Setenv("BAKERY_ENCRYPTION_KEY", "not-a-key")
	if r := serve("badkey"); r.code != 1 || !strings.Contains(r.stderr, "BAKERY_ENCRYPTION_KEY") || strings.Contains(r.stderr, "not-a-key") {
		t.Fatalf("server with a malformed key: exit %d\n%s", r.code, r.stderr)
	}

	key := sealed.NewKey()
	t.Setenv("BAKERY_ENCRYPTION_KEY", key)
	t.Setenv("BAKERY_ALLOW_LOCAL_NODES", "true") // nodesYAML has one
	urlA, stderrA, _ := startServerCmd(t, "--data", filepath.Join(tmp, "a"), "--log-level", "warn")
	urlB, stderrB, _ := startServerCmd(t, "--data", filepath.Join(tmp, "b"), "--log-level", "warn")
	tok, err := os.ReadFile(filepath.Join(tmp, "a", "admin-token"))
	if err != nil {
		t.Fatalf("admin token: %v\n%s", err, stderrA())
	}
	token := strings.TrimSpace(string(tok))
	must(t, "", "apply", "-f", manifestDir(t), "--server", urlA, "--token", token)
	keyA, keyB := bootstrapKey(t, urlA, token, "web-1"), bootstrapKey(t, urlB, token, "web-1")
	if keyA != keyB {
		t.Fatalf("two servers on one database have different SSH keys:\n%s\n%s", keyA, keyB)
	}
	for _, out := range []string{stderrA(), stderrB()} {
		if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, key) {
			t.Fatalf("a server printed a secret:\n%s", out)
		}
	}
	for _, d := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(tmp, d, "ssh")); err == nil {
			t.Errorf("server %s wrote its SSH key pair to its data directory", d)
		}
	}

	// Another key: refused, naming the variable; nothing printed of a
	// token.
	t.Setenv("BAKERY_ENCRYPTION_KEY", sealed.NewKey())
	r = serve("c")
	if r.code != 1 || !strings.Contains(r.stderr, "BAKERY_ENCRYPTION_KEY") || !strings.Contains(r.stderr, "encryption key this server does not have") {
		t.Fatalf("server with another key: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "serving on") || strings.Contains(r.stderr, "bkr_") {
		t.Fatalf("server with another key started:\n%s", r.stderr)
	}

	// Rotation through --encryption-key-file: a new key first, the old
	// one after it; the key pair is the same.
	t.Setenv("BAKERY_ENCRYPTION_KEY", "")
	keyFile := filepath.Join(tmp, "keys")
	if err := os.WriteFile(keyFile, []byte(sealed.NewKey()+",\n"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	urlD, _, _ := startServerCmd(t, "--data", filepath.Join(tmp, "d"), "--log-level", "warn", "--encryption-key-file", keyFile)
	if keyD := bootstrapKey(t, urlD, token, "web-1"); keyD != keyA {
		t.Fatalf("rotated keyring: another SSH key:\n%s\n%s", keyA, keyD)
	}
}
