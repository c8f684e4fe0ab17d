package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/filestore"
)

// env is a server on a real file store in a temporary directory.
type env struct {
	t     *testing.T
	st    *filestore.Store
	ts    *httptest.Server
	token string
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newEnv(t *testing.T, mod ...func(*server.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := filestore.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tok, created, err := auth.EnsureAdminToken(t.Context(), st, filepath.Join(dir, "admin-token"))
	if err != nil || !created {
		t.Fatalf("EnsureAdminToken: created=%v err=%v", created, err)
	}
	logs := &syncBuffer{}
	cfg := server.Config{
		Store:     st,
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:   "1.2.3",
		Commit:    "abc123",
		StoreKind: "file",
	}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		if strings.Contains(logs.String(), tok) {
			t.Error("the token appears in the server log")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &env{t: t, st: st, ts: ts, token: tok, logs: logs}
}

func newServer(t *testing.T, srv *server.Server) *httptest.Server {
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// response is an answer of the server.
type response struct {
	status int
	header http.Header
	body   []byte
}

// apiError is the JSON error body.
type apiError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Details []server.Detail `json:"details"`
}

func (r response) err(t *testing.T) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v\n%s", err, r.body)
	}
	if e.Code != r.status {
		t.Fatalf("error body code %d, HTTP status %d", e.Code, r.status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q", ct)
	}
	return e
}

// decode decodes the JSON answer into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, r.body)
	}
}

// object decodes the answer as an object of kind.
func (r response) object(t *testing.T, kind string) api.Object {
	t.Helper()
	o, err := api.New(kind)
	if err != nil {
		t.Fatal(err)
	}
	r.decode(t, o)
	return o
}

const yamlType = "application/yaml"

// req sends a request with the admin token; body "" means no body.
func (e *env) req(method, path, contentType, body string) response {
	e.t.Helper()
	return e.reqToken(method, path, contentType, body, e.token)
}

func (e *env) reqToken(method, path, contentType, body, token string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) response {
	e.t.Helper()
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails the test unless r has status code.
func want(t *testing.T, r response, code int) {
	t.Helper()
	if r.status != code {
		t.Fatalf("status %d, want %d; body:\n%s", r.status, code, r.body)
	}
}

// wantDetail fails unless the error has a detail whose field is field and
// whose reason contains reason.
func wantDetail(t *testing.T, e apiError, field, reason string) {
	t.Helper()
	for _, d := range e.Details {
		if d.Field == field && strings.Contains(d.Reason, reason) {
			return
		}
	}
	t.Fatalf("no detail %q with reason containing %q in %+v", field, reason, e.Details)
}

const nodeYAML = `apiVersion: bakery.dev/v1
kind: Node
metadata:
  name: n1
  labels:
    role: web
spec:
  address: 10.0.0.1
`

const deployYAML = `apiVersion: bakery.dev/v1
kind: Deployment
metadata:
  name: web
spec:
  source:
    repo: /srv/repo
  nodes: [n1]
  run:
    command: ./server
    port: 8000
`

// deployment returns the YAML of a deployment named name with ingress
// hosts.
func deployment(name string, hosts ...string) string {
	s := strings.Replace(deployYAML, "name: web", "name: "+name, 1)
	if len(hosts) > 0 {
		s += "  ingress:\n    hosts: [" + strings.Join(hosts, ", ") + "]\n"
	}
	return s
}
