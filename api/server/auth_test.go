package server_test

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/filestore"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	other, _, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/version", "/api/v1/nodes", "/api/v1/nodes/n1", "/api/v1/unknown", "/api", "/api/"} {
		for _, tc := range []struct{ name, header string }{
			{"missing", ""},
			{"wrong", "Bearer " + other},
			{"empty bearer", "Bearer "},
			{"basic", "Basic " + e.token},
			{"bare token", e.token},
		} {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", e.ts.URL+path, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			r := e.send(req)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("%s token on %s: status %d, want 401: %s", tc.name, path, r.status, r.body)
			}
			r.err(t)
			if r.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("401 without WWW-Authenticate")
			}
		}
	}
	// A body is refused before it is read.
	want(t, e.reqToken("POST", "/api/v1/apply", yamlType, nodeYAML, other), http.StatusUnauthorized)
	if n := stored(t, e, "Node"); len(n) != 0 {
		t.Fatal("an unauthenticated apply stored objects")
	}
	// The right token, with the scheme in any case.
	want(t, e.req("GET", "/api/v1/version", "", ""), http.StatusOK)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.ts.URL+"/api/v1/nodes", nil)
	req.Header.Set("Authorization", "bearer "+e.token)
	want(t, e.send(req), http.StatusOK)
	// Probes need no token.
	want(t, e.reqToken("GET", "/healthz", "", "", ""), http.StatusOK)
	want(t, e.reqToken("GET", "/readyz", "", "", ""), http.StatusOK)
	if !strings.Contains(e.logs.String(), "token=admin") {
		t.Fatal("the access log does not name the token used")
	}
}

func TestEnsureAdminToken(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	file := filepath.Join(dir, "state", "bakery", "admin-token")

	tok, created, err := auth.EnsureAdminToken(t.Context(), st, file)
	if err != nil || !created || !strings.HasPrefix(tok, "bkr_") {
		t.Fatalf("first call: %q %v %v", tok, created, err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(file))
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("token dir mode %v, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(file)
	if strings.TrimSpace(string(b)) != tok {
		t.Fatalf("token file holds %q, want the token", b)
	}
	toks, err := st.ListTokens(t.Context())
	if err != nil || len(toks) != 1 || toks[0].Name != "admin" || toks[0].Hash != auth.HashToken(tok) {
		t.Fatalf("stored tokens %+v %v", toks, err)
	}
	// Only the hash is stored.
	filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), tok) {
				t.Errorf("%s holds the token in clear", p)
			}
		}
		return nil
	})

	// The token works.
	srv, err := server.New(server.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, srv)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/api/v1/nodes", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin token: status %d", resp.StatusCode)
	}

	// A second call does nothing.
	os.Remove(file)
	tok2, created, err := auth.EnsureAdminToken(t.Context(), st, file)
	if err != nil || created || tok2 != "" {
		t.Fatalf("second call: %q %v %v", tok2, created, err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatal("second call wrote the token file")
	}
	if toks, _ := st.ListTokens(t.Context()); len(toks) != 1 {
		t.Fatalf("second call stored a token: %+v", toks)
	}
}
