package ui_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/ui"
)

// loginServers starts n servers with the UI sharing one store of kind
// (the file store: one server; PostgreSQL: n stores opened on one
// database, as n control planes), user alice in it, 3 failures a minute.
func loginServers(t *testing.T, kind string, n int, log *slog.Logger) []*env {
	t.Helper()
	var stores []testStore
	switch kind {
	case "file":
		fs, err := filestore.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, fs)
	case "postgres":
		url := pgtest.DatabaseURL(t)
		for range n {
			ps, err := pgstore.Open(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			stores = append(stores, ps)
		}
	}
	clk := &clock{t: time.Now()}
	if err := auth.CreateUser(t.Context(), stores[0], testUser, testPassword, bcrypt.MinCost, clk.Now()); err != nil {
		t.Fatal(err)
	}
	var out []*env
	for _, st := range stores {
		t.Cleanup(func() { st.Close() })
		sc := server.Config{Store: st, Logger: log, Auth: auth.Config{
			BcryptCost: bcrypt.MinCost, Now: clk.Now, LoginFailures: 3, LoginWindow: time.Minute, SessionTTL: time.Hour,
		}}
		sc.UI = mounted(ui.Config{Now: clk.Now}, sc)
		srv, err := server.New(sc)
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		out = append(out, &env{t: t, st: st, ts: ts, clock: clk})
	}
	return out
}

// TestLoginLimitParallel: 60 wrong passwords at once, spread over every
// server sharing the store, get at most the limit (3) of 401s — each
// attempt is counted before the password is compared, atomically, and on
// PostgreSQL across the servers — and 429 for the rest.
func TestLoginLimitParallel(t *testing.T) {
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			envs := loginServers(t, kind, 2, slog.New(slog.DiscardHandler))
			var mu sync.Mutex
			codes := map[int]int{}
			var wg sync.WaitGroup
			for i := range 60 {
				b := envs[i%len(envs)].browser()
				b.get("/ui/login")
				wg.Add(1)
				go func() {
					defer wg.Done()
					code, _, _ := b.post("/ui/login", map[string][]string{"name": {testUser}, "password": {"wrong password"}})
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if codes[http.StatusUnauthorized] > 3 || codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests] != 60 {
				t.Fatalf("answers %v: want at most 3 × 401, the rest 429", codes)
			}
		})
	}
}

// TestLoginLongName: a user name is cut to 64 bytes before anything uses
// it: the log, the page that echoes it, the attempt counter (a 5 MiB name
// is one account among others, not 5 MiB of memory or log per attempt).
func TestLoginLongName(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	e := loginServers(t, "file", 1, log)[0]
	long := strings.Repeat("a", 3<<20) // bodies are limited to 4 MiB
	b := e.browser()
	code, body := b.login(long, "wrong password")
	if code != http.StatusUnauthorized {
		t.Fatalf("login with a 3 MiB name: %d", code)
	}
	if strings.Contains(body, strings.Repeat("a", auth.MaxUserNameLen+1)) || !strings.Contains(body, strings.Repeat("a", auth.MaxUserNameLen)) {
		t.Fatal("the page echoes more (or less) than the first 64 bytes of the name")
	}
	mu.Lock()
	logged := logs.String()
	mu.Unlock()
	if len(logged) > 4096 || strings.Contains(logged, strings.Repeat("a", auth.MaxUserNameLen+1)) {
		t.Fatalf("the log holds %d bytes for one attempt", len(logged))
	}
	// Names that differ only beyond 64 bytes are one account for the limit.
	for range 2 {
		if code, _ := b.login(long+"x", "wrong password"); code != http.StatusUnauthorized {
			t.Fatalf("second and third attempts: %d", code)
		}
	}
	if code, _ := e.browser().login(strings.Repeat("a", auth.MaxUserNameLen)+"yz", "wrong"); code != http.StatusTooManyRequests {
		t.Fatalf("fourth attempt on the same 64 bytes: %d, want 429", code)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestEditorRefusesLocalNode: the web UI writes through the API, so a
// local Node from the editor is refused (403) with the field and the flag,
// and nothing is stored.
func TestEditorRefusesLocalNode(t *testing.T) {
	e := newEnv(t, false)
	b := e.loggedIn()
	b.get("/ui/editor")
	yaml := "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: self}\nspec: {local: true}\n"
	code, body, _ := b.post("/ui/editor", map[string][]string{"yaml": {yaml}, "action": {"apply"}})
	if code != http.StatusForbidden || !strings.Contains(body, "spec.local") || !strings.Contains(body, "--allow-local-nodes") {
		t.Fatalf("a local node from the editor: %d\n%s", code, body)
	}
	if _, err := e.st.Get(t.Context(), "Node", "self"); err == nil {
		t.Fatal("the local node was stored")
	}
}
