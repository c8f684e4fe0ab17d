package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/client"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/filestore"
)

// testServer runs the real API server on a file store in a temporary
// directory and returns its URL and admin token. The user agents of the
// requests it sees are recorded in agents.
type testServer struct {
	URL, Token string
	mu         sync.Mutex
	agents     []string
}

func (ts *testServer) userAgents() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.agents...)
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st, err := filestore.Open(t.TempDir(), filestore.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	token, created, err := auth.EnsureAdminToken(t.Context(), st, "")
	if err != nil || !created {
		t.Fatalf("EnsureAdminToken: created %v, %v", created, err)
	}
	srv, err := server.New(server.Config{Store: st, Logger: log, Version: "v9.9.9", Commit: "abc", StoreKind: "file"})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Token: token}
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.agents = append(ts.agents, r.UserAgent())
		ts.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	ts.URL = hs.URL
	return ts
}

func newClient(t *testing.T, ts *testServer) *client.Client {
	t.Helper()
	c, err := client.New(ts.URL, ts.Token, client.WithVersion("1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func node(name, addr string) *api.Node {
	return &api.Node{
		TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: name, Labels: map[string]string{"role": "web"}},
		Spec:     api.NodeSpec{Address: addr},
	}
}

func deployment(name string) *api.Deployment {
	return &api.Deployment{
		TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment},
		Metadata: api.ObjectMeta{Name: name},
		Spec: api.DeploymentSpec{
			Source: api.Source{Repo: "https://example.com/" + name + ".git"},
			Nodes:  []string{"web-1"},
			Run:    api.Run{Command: "./server"},
		},
	}
}

func TestCRUD(t *testing.T) {
	ts := startServer(t)
	c := newClient(t, ts)
	ctx := t.Context()

	created, err := c.Create(ctx, node("web-1", "127.0.0.1"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	n := created.(*api.Node)
	if n.Metadata.Generation != 1 || n.Metadata.UID == "" || n.Spec.Port != 22 {
		t.Errorf("created node: generation %d, uid %q, port %d; want 1, set, 22 (defaulted)", n.Metadata.Generation, n.Metadata.UID, n.Spec.Port)
	}
	if _, err := c.Create(ctx, node("web-1", "127.0.0.1")); !client.IsConflict(err) {
		t.Errorf("Create twice: %v, want a conflict", err)
	}
	if _, err := c.Create(ctx, node("db-1", "127.0.0.2")); err != nil {
		t.Fatal(err)
	}

	got, err := c.Get(ctx, api.KindNode, "web-1")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.GetTypeMeta().Kind != api.KindNode || got.(*api.Node).Spec.Address != "127.0.0.1" {
		t.Errorf("Get: %+v", got)
	}
	_, err = c.Get(ctx, api.KindNode, "nope")
	if !client.IsNotFound(err) || !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get missing: %v, want not found", err)
	}
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusNotFound || ae.Message == "" {
		t.Errorf("Get missing: %#v, want an *APIError 404 with a message", err)
	}

	all, err := c.List(ctx, api.KindNode, "")
	if err != nil || len(all) != 2 || all[0].GetObjectMeta().Name != "db-1" {
		t.Fatalf("List: %d objects, %v; want db-1, web-1", len(all), err)
	}
	n2 := node("web-2", "127.0.0.3")
	n2.Metadata.Labels = map[string]string{"role": "db"}
	if _, err := c.Create(ctx, n2); err != nil {
		t.Fatal(err)
	}
	sel, err := c.List(ctx, api.KindNode, "role=db")
	if err != nil || len(sel) != 1 || sel[0].GetObjectMeta().Name != "web-2" {
		t.Errorf("List role=db: %v, %v; want web-2", sel, err)
	}

	// Replace with the current resourceVersion bumps the generation; a
	// stale one is a conflict.
	cur := got.(*api.Node)
	cur.Spec.Address = "127.0.0.9"
	rep, err := c.Replace(ctx, cur)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if g := rep.GetObjectMeta().Generation; g != 2 {
		t.Errorf("generation after Replace = %d, want 2", g)
	}
	cur.Spec.Address = "127.0.0.10"
	if _, err := c.Replace(ctx, cur); !client.IsConflict(err) {
		t.Errorf("Replace with a stale resourceVersion: %v, want a conflict", err)
	}

	st, err := c.Status(ctx, api.KindNode, "web-1")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.GetObjectMeta().Name != "web-1" || st.GetObjectMeta().Generation != 2 {
		t.Errorf("Status metadata: %+v", st.GetObjectMeta())
	}

	if err := c.Delete(ctx, api.KindNode, "web-1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := c.Delete(ctx, api.KindNode, "web-1"); !client.IsNotFound(err) {
		t.Errorf("Delete twice: %v, want not found", err)
	}

	for _, ua := range ts.userAgents() {
		if ua != "bakery-cli/1.2.3" {
			t.Errorf("User-Agent %q, want bakery-cli/1.2.3", ua)
		}
	}
}

func TestValidationErrorDetails(t *testing.T) {
	ts := startServer(t)
	c := newClient(t, ts)
	d := deployment("web")
	d.Spec.Source.Repo = ""
	port := 70000
	d.Spec.Run.Port = &port
	_, err := c.Create(t.Context(), d)
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("Create invalid: %v, want an *APIError", err)
	}
	if ae.Code != 400 || !client.IsInvalid(err) {
		t.Errorf("code %d, want 400", ae.Code)
	}
	fields := map[string]bool{}
	for _, d := range ae.Details {
		fields[d.Field] = true
	}
	if !fields["spec.source.repo"] || !fields["spec.run.port"] {
		t.Errorf("details %+v, want spec.source.repo and spec.run.port", ae.Details)
	}
	if msg := err.Error(); !strings.Contains(msg, "spec.run.port") || !strings.Contains(msg, "HTTP 400") {
		t.Errorf("Error() = %q, want the field paths and the status", msg)
	}
}

func TestApply(t *testing.T) {
	ts := startServer(t)
	c := newClient(t, ts)
	ctx := t.Context()
	objs := []api.Object{node("web-1", "127.0.0.1"), deployment("hello")}

	dry, err := c.Apply(ctx, objs, true)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !dry.DryRun || !dry.Changed() || len(dry.Results) != 2 || dry.Results[1].Action != "created" {
		t.Errorf("dry run: %+v", dry)
	}
	if _, err := c.Get(ctx, api.KindDeployment, "hello"); !client.IsNotFound(err) {
		t.Errorf("after a dry run Get = %v, want not found", err)
	}

	res, err := c.Apply(ctx, objs, false)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, r := range res.Results {
		if r.Action != "created" || r.Generation != 1 || !strings.Contains(r.Diff, "+") {
			t.Errorf("result %+v, want created at generation 1 with a diff", r)
		}
	}
	res, err = c.Apply(ctx, objs, false)
	if err != nil || res.Changed() {
		t.Errorf("Apply again: %+v, %v; want unchanged", res, err)
	}

	// A raw YAML bundle.
	bundle := []byte(`apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: hello}
spec:
  source: {repo: "https://example.com/hello.git", ref: v2}
  nodes: [web-1]
  run: {command: ./server}
`)
	res, err = c.ApplyBundle(ctx, bundle, false)
	if err != nil {
		t.Fatalf("ApplyBundle: %v", err)
	}
	if r := res.Results[0]; r.Action != "configured" || r.Generation != 2 || !strings.Contains(r.Diff, "+    ref: v2") {
		t.Errorf("ApplyBundle result %+v, want configured at generation 2, diff showing ref: v2", r)
	}

	// A bad document rejects the whole bundle, naming the document.
	_, err = c.ApplyBundle(ctx, []byte(`{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"x"},"spec":{"adress":"1.2.3.4"}}`), false)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != 400 || len(ae.Details) == 0 || !strings.Contains(ae.Details[0].Field, "document 1") {
		t.Errorf("ApplyBundle bad: %v, want 400 with document-prefixed details", err)
	}
}

func TestVersionAndAuth(t *testing.T) {
	ts := startServer(t)
	v, err := newClient(t, ts).Version(t.Context())
	if err != nil || v.Version != "v9.9.9" || v.Store != "file" || v.Commit != "abc" {
		t.Errorf("Version = %+v, %v", v, err)
	}
	bad, err := client.New(ts.URL, "bkr_wrong")
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.List(t.Context(), api.KindNode, "")
	if !client.IsUnauthorized(err) {
		t.Errorf("wrong token: %v, want unauthorized", err)
	}
	if err := bad.Ready(t.Context()); err != nil {
		t.Errorf("Ready (no token needed): %v", err)
	}
}

func TestTimeout(t *testing.T) {
	// The real server behind a gate that holds requests until released:
	// the client gives up at its own timeout.
	ts := startServer(t)
	release := make(chan struct{})
	defer close(release)
	target, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		r.URL.Scheme, r.URL.Host = target.URL.Scheme, target.URL.Host
		resp, err := http.DefaultTransport.RoundTrip(r.Clone(r.Context()))
		if err != nil {
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	c, err := client.New(proxy.URL, ts.Token, client.WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Version(t.Context())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Version = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

func TestParseServerURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":    "http://127.0.0.1:8080",
		"127.0.0.1:8080":           "http://127.0.0.1:8080",
		"https://bakery.example/":  "https://bakery.example",
		"https://h.example/bakery": "https://h.example/bakery",
	} {
		u, err := client.ParseServerURL(in)
		if err != nil || u.String() != want {
			t.Errorf("ParseServerURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, in := range []string{"", "ftp://x", "http://", "http://h?x=1"} {
		if _, err := client.ParseServerURL(in); err == nil {
			t.Errorf("ParseServerURL(%q) succeeded, want an error", in)
		}
	}
}
