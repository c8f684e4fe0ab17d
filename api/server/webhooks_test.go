package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/sealed"
)

// pushRecorder is a control loop that only records the pushes queued.
type pushRecorder struct {
	mu     sync.Mutex
	pushes []api.Push
	full   bool // QueuePush answers ErrPushQueueFull
}

func (p *pushRecorder) PublicKey() string { return "" }
func (p *pushRecorder) VerifyNode(context.Context, string) (*api.Node, error) {
	return nil, fmt.Errorf("not here")
}
func (p *pushRecorder) QueuePush(push api.Push) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.full {
		return api.ErrPushQueueFull
	}
	p.pushes = append(p.pushes, push)
	return nil
}
func (p *pushRecorder) DeploymentAction(context.Context, string, api.ActionRequest) (*api.Deployment, error) {
	return nil, fmt.Errorf("not here")
}
func (p *pushRecorder) SyncSource(context.Context, string) (string, error) {
	return "", fmt.Errorf("not here")
}
func (p *pushRecorder) RuntimeLogs(context.Context, string, api.RuntimeLogRequest, func(api.RuntimeLogLine)) error {
	return fmt.Errorf("not here")
}
func (p *pushRecorder) ExecTerminal(context.Context, string, api.ExecRequest, io.Reader, io.Writer, <-chan [2]int) (string, int, error) {
	return "", 0, fmt.Errorf("not here")
}
func (p *pushRecorder) Exec(context.Context, string, api.ExecRequest, func(api.ExecLine)) (string, int, error) {
	return "", 0, fmt.Errorf("not here")
}
func (p *pushRecorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pushes)
}

func webhookEnv(t *testing.T) (*env, *pushRecorder) {
	t.Helper()
	kr, err := sealed.ParseKeyring(sealed.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	pr := &pushRecorder{}
	e := newEnv(t, func(c *server.Config) { c.Keyring = kr; c.Loop = pr })
	return e, pr
}

func sign(secret string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(body)
	return "sha256=" + hex.EncodeToString(h.Sum(nil))
}

const commitA = "0123456789abcdef0123456789abcdef01234567"

func githubPayload(cloneURL, ref, after string) string {
	return fmt.Sprintf(`{"ref":%q,"before":"0000000000000000000000000000000000000000","after":%q,"created":false,"deleted":false,"forced":false,
"repository":{"id":1296269,"name":"app","full_name":"octo/app","private":false,"html_url":"https://github.com/octo/app",
"clone_url":%q,"ssh_url":"git@github.com:octo/app.git","git_url":"git://github.com/octo/app.git"},
"pusher":{"name":"octo","email":"octo@example.test"},"head_commit":{"id":%q,"message":"x"},"commits":[]}`, ref, after, cloneURL, after)
}

func (e *env) hook(path, event, delivery, sig, body string) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if event != "" {
		req.Header.Set("X-GitHub-Event", event)
	}
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Bakery-Delivery", delivery)
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	return e.send(req)
}

func TestWebhookSecretsAndDeliveries(t *testing.T) {
	e, pr := webhookEnv(t)
	// A secret is minted once, shown once.
	r := e.req("POST", "/api/v1/webhooks/secrets", "application/json", `{"repo":"https://github.com/Octo/App.git"}`)
	want(t, r, http.StatusCreated)
	var created api.WebhookSecretResponse
	r.decode(t, &created)
	if created.Repo != "github.com/octo/app" || len(created.Secret) < 40 || !strings.HasSuffix(created.GitHubURL, server.GitHubWebhookPath) {
		t.Fatalf("created: %+v", created)
	}
	want(t, e.req("POST", "/api/v1/webhooks/secrets", "application/json", `{"repo":"git@github.com:octo/app"}`), http.StatusConflict)
	r = e.req("GET", "/api/v1/webhooks/secrets?repo=git@github.com:octo/app.git", "", "")
	want(t, r, http.StatusOK)
	if strings.Contains(string(r.body), created.Secret) {
		t.Fatal("the secret is shown again")
	}
	// Secrets are sealed in the store: the plain secret is nowhere on disk.
	if b, err := e.st.GetSetting(t.Context(), "webhook-deliveries"); err == nil && strings.Contains(string(b), created.Secret) {
		t.Fatal("secret in the clear")
	}
	// Managing secrets needs a token.
	want(t, e.reqToken("POST", "/api/v1/webhooks/secrets", "application/json", `{"repo":"x"}`, ""), http.StatusUnauthorized)

	body := githubPayload("https://github.com/octo/app.git", "refs/heads/main", commitA)
	good := sign(created.Secret, []byte(body))
	// Unsigned, malformed, wrong secret, tampered body: 401, nothing queued.
	for name, sig := range map[string]string{
		"unsigned":  "",
		"malformed": "sha256=zz",
		"sha1":      "sha1=" + strings.Repeat("0", 40),
		"wrong":     sign("not-the-secret", []byte(body)),
		"tampered":  sign(created.Secret, []byte(body+" ")),
	} {
		r := e.hook(server.GitHubWebhookPath, "push", "d-"+name, sig, body)
		if r.status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d %s", name, r.status, r.body)
		}
	}
	// A repository with no secret: 401.
	other := strings.ReplaceAll(body, "octo/app", "octo/other")
	want(t, e.hook(server.GitHubWebhookPath, "push", "d-other", sign(created.Secret, []byte(other)), other), http.StatusUnauthorized)
	if pr.count() != 0 {
		t.Fatal("a badly signed delivery was queued")
	}
	// Good: queued.
	r = e.hook(server.GitHubWebhookPath, "push", "d-1", good, body)
	want(t, r, http.StatusAccepted)
	if pr.count() != 1 || pr.pushes[0].Ref != "refs/heads/main" || pr.pushes[0].After != commitA || pr.pushes[0].Delivery != "d-1" {
		t.Fatalf("pushes: %+v", pr.pushes)
	}
	// Replay: acknowledged, ignored.
	r = e.hook(server.GitHubWebhookPath, "push", "d-1", good, body)
	want(t, r, http.StatusOK)
	var wr api.WebhookResponse
	r.decode(t, &wr)
	if wr.Result != "duplicate" || pr.count() != 1 {
		t.Fatalf("replay: %+v, %d pushes", wr, pr.count())
	}
	// The replay log is in the store: a new server refuses the replay too.
	kr2, _ := sealed.ParseKeyring(sealed.NewKey())
	srv2, err := server.New(server.Config{Store: e.st, Keyring: kr2, Loop: pr, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := httptest.NewServer(srv2.Handler())
	defer ts2.Close()
	e2 := *e
	e2.ts = ts2
	// (Another key cannot open the secret: 401, nothing queued.)
	want(t, e2.hook(server.GitHubWebhookPath, "push", "d-1", good, body), http.StatusUnauthorized)
	// Ping.
	ping := `{"zen":"Keep it simple.","hook_id":1,"repository":{"clone_url":"https://github.com/octo/app.git"}}`
	r = e.hook(server.GitHubWebhookPath, "ping", "d-ping", sign(created.Secret, []byte(ping)), ping)
	want(t, r, http.StatusOK)
	r.decode(t, &wr)
	if wr.Result != "pong" {
		t.Fatalf("ping: %+v", wr)
	}
	// Generic webhook, same scheme.
	want(t, e.req("POST", "/api/v1/webhooks/secrets", "application/json", `{"repo":"/srv/git/app.git"}`), http.StatusCreated)
	r = e.req("POST", "/api/v1/webhooks/secrets", "application/json", `{"repo":"/srv/git/app.git","rotate":true}`)
	want(t, r, http.StatusCreated)
	var local api.WebhookSecretResponse
	r.decode(t, &local)
	gen := `{"repo":"/srv/git/app","ref":"main","after":"` + commitA + `"}`
	want(t, e.hook(server.GenericWebhookPath, "", "g-1", sign("x", []byte(gen)), gen), http.StatusUnauthorized)
	want(t, e.hook(server.GenericWebhookPath, "", "g-1", sign(local.Secret, []byte(gen)), gen), http.StatusAccepted)
	if p := pr.pushes[len(pr.pushes)-1]; p.Ref != "refs/heads/main" || p.Repos[0] != "/srv/git/app" {
		t.Fatalf("generic push: %+v", p)
	}
	// A full queue: 503 with Retry-After, and the delivery id is not spent.
	pr.mu.Lock()
	pr.full = true
	pr.mu.Unlock()
	gen2 := `{"repo":"/srv/git/app","ref":"main","after":"` + strings.Repeat("b", 40) + `"}`
	r = e.hook(server.GenericWebhookPath, "", "g-full", sign(local.Secret, []byte(gen2)), gen2)
	want(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	pr.mu.Lock()
	pr.full = false
	pr.mu.Unlock()
	want(t, e.hook(server.GenericWebhookPath, "", "g-full", sign(local.Secret, []byte(gen2)), gen2), http.StatusAccepted)
	// A bad payload, signed: 400.
	bad := `{"repo":"/srv/git/app","ref":"main","after":"nope"}`
	want(t, e.hook(server.GenericWebhookPath, "", "g-2", sign(local.Secret, []byte(bad)), bad), http.StatusBadRequest)
}

// countingBody counts the bytes a handler reads of a request body.
type countingBody struct {
	io.ReadCloser
	read *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func TestWebhookRejectsHugePayloadWithoutReadingIt(t *testing.T) {
	pr := &pushRecorder{}
	kr, _ := sealed.ParseKeyring(sealed.NewKey())
	st, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(server.Config{Store: st, Keyring: kr, Loop: pr, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var read atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = countingBody{r.Body, &read}
		srv.Handler().ServeHTTP(w, r)
	}))
	defer ts.Close()
	const size = 20 << 20
	for _, chunked := range []bool{false, true} {
		read.Store(0)
		var body io.Reader = strings.NewReader(strings.Repeat("a", size))
		if chunked {
			body = io.MultiReader(body) // no length known: chunked encoding
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+server.GitHubWebhookPath, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", "big")
		req.Header.Set("X-Hub-Signature-256", sign("x", nil))
		resp, err := ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("chunked=%v: status %d", chunked, resp.StatusCode)
			}
		}
		// The client may see the connection closed while still sending;
		// either way the server read no more than the limit (and a byte).
		if got := read.Load(); got > server.DefaultMaxWebhookBytes+1 {
			t.Fatalf("chunked=%v: the handler read %d bytes of a %d-byte payload", chunked, got, size)
		}
		t.Logf("chunked=%v: the handler read %d bytes of %d", chunked, read.Load(), size)
	}
	if pr.count() != 0 {
		t.Fatal("queued")
	}
}

func FuzzParseGitHubPush(f *testing.F) {
	f.Add([]byte(githubPayload("https://github.com/octo/app.git", "refs/heads/main", commitA)))
	f.Add([]byte(`{"ref":"refs/tags/v1","after":"` + commitA + `","repository":{"ssh_url":"git@h:o/r"}}`))
	f.Add([]byte(`{"ref":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"repo":"/x","ref":"main","after":"` + commitA + `"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) (server.PushPayload, error){server.ParseGitHubPush, server.ParseGenericPush} {
			p, err := parse(b)
			if err != nil {
				continue
			}
			if !strings.HasPrefix(p.Ref, "refs/heads/") && !strings.HasPrefix(p.Ref, "refs/tags/") {
				t.Fatalf("accepted ref %q", p.Ref)
			}
			if len(p.After) != 40 || strings.Trim(p.After, "0123456789abcdef") != "" {
				t.Fatalf("accepted after %q", p.After)
			}
			if len(p.Repos) == 0 {
				t.Fatal("accepted without a repository")
			}
			for _, r := range append([]string{p.Ref}, p.Repos...) {
				if strings.ContainsAny(r, "\x00\n\r") || len(r) > 2048 {
					t.Fatalf("accepted %q", r)
				}
			}
		}
	})
}
