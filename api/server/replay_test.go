package server_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/sealed"
)

// TestWebhookBodyReplay: a signed body is accepted once within the
// delivery retention whatever its delivery id — also by another server on
// the same store (after a restart) — so a captured push cannot be
// replayed under new ids to re-fetch and cancel rollouts.
func TestWebhookBodyReplay(t *testing.T) {
	kr, _ := sealed.ParseKeyring(sealed.NewKey())
	pr := &pushRecorder{}
	e := newEnv(t, func(c *server.Config) { c.Keyring = kr; c.Loop = pr })
	r := e.req("POST", "/api/v1/webhooks/secrets", "application/json", `{"repo":"https://github.com/octo/app.git"}`)
	want(t, r, http.StatusCreated)
	var created api.WebhookSecretResponse
	r.decode(t, &created)
	body := githubPayload("https://github.com/octo/app.git", "refs/heads/main", commitA)
	sig := sign(created.Secret, []byte(body))
	want(t, e.hook(server.GitHubWebhookPath, "push", "d-1", sig, body), http.StatusAccepted)

	isDuplicate := func(e *env, id string) {
		t.Helper()
		r := e.hook(server.GitHubWebhookPath, "push", id, sig, body)
		want(t, r, http.StatusOK)
		var wr api.WebhookResponse
		r.decode(t, &wr)
		if wr.Result != "duplicate" {
			t.Fatalf("the same body under delivery id %s: %+v", id, wr)
		}
	}
	isDuplicate(e, "d-2")
	isDuplicate(e, "a-fresh-id")

	srv2, err := server.New(server.Config{Store: e.st, Keyring: kr, Loop: pr, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts2 := httptest.NewServer(srv2.Handler())
	defer ts2.Close()
	e2 := *e
	e2.ts = ts2
	isDuplicate(&e2, "after-a-restart")
	if pr.count() != 1 {
		t.Fatalf("%d pushes queued, want 1", pr.count())
	}
	// Another push (another body) is accepted.
	other := githubPayload("https://github.com/octo/app.git", "refs/heads/main", "89abcdef0123456789abcdef0123456789abcdef")
	want(t, e2.hook(server.GitHubWebhookPath, "push", "d-3", sign(created.Secret, []byte(other)), other), http.StatusAccepted)
}
