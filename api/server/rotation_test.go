package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/github"
	"bakery.dev/bakery/api/github/githubtest"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/sealed"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// serverOn starts a server on st (shared by several servers, as after a
// restart or on one database) with keyring keys and the GitHub fake.
func serverOn(t *testing.T, st store.Store, keys string, gh *githubtest.Server, loop server.Loop) *env {
	t.Helper()
	kr, err := sealed.ParseKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	// One admin token for every server: the GitHub token belongs to its
	// caller.
	tok, _, err := auth.EnsureAdminToken(t.Context(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	if tok == "" {
		tok = firstToken[st]
	}
	firstToken[st] = tok
	srv, err := server.New(server.Config{Store: st, Logger: slog.New(slog.DiscardHandler), Keyring: kr, Loop: loop,
		GitHub: &github.Client{ClientID: githubtest.ClientID, ClientSecret: githubtest.ClientSecret, WebURL: gh.URL, APIURL: gh.APIURL()}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e := &env{t: t, ts: ts, token: tok, logs: &syncBuffer{}}
	if fs, ok := st.(*filestore.Store); ok {
		e.st = fs
	}
	return e
}

// firstToken is the admin token minted on each store.
var firstToken = map[store.Store]string{}

// TestRotationResealsEverything, on both stores: rotate the key (new key
// first), reencrypt, drop the old key — and a signed webhook push, a
// GitHub call, a Secret and the stored SSH identity still work: every
// kind of sealed value is in the registry that reencrypt walks.
func TestRotationResealsEverything(t *testing.T) {
	for _, kind := range []string{"file", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var st store.Store
			if kind == "file" {
				fs, err := filestore.Open(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				st = fs
			} else {
				ps, err := pgstore.Open(t.Context(), pgtest.DatabaseURL(t))
				if err != nil {
					t.Fatal(err)
				}
				st = ps
			}
			t.Cleanup(func() { st.Close() })
			testRotation(t, st)
		})
	}
}

func testRotation(t *testing.T, st store.Store) {
	gh := githubtest.Start(t)
	k1, k2 := sealed.NewKey(), sealed.NewKey()
	pr := &pushRecorder{}

	// With k1: a Secret, a webhook secret, a GitHub sign-in, an SSH identity.
	e := serverOn(t, st, k1, gh, pr)
	secretYAML := "apiVersion: bakery.dev/v1\nkind: Secret\nmetadata: {name: db}\nspec: {data: {PASSWORD: hunter2-hunter2}}\n"
	want(t, e.req("POST", "/api/v1/apply", yamlType, secretYAML), http.StatusOK)
	r := e.req("POST", "/api/v1/webhooks/secrets", "application/json", `{"repo": "https://github.example/octo/app.git"}`)
	want(t, r, http.StatusCreated)
	var ws api.WebhookSecretResponse
	r.decode(t, &ws)
	r = e.req("GET", "/api/v1/github/login", "", "")
	want(t, r, http.StatusOK)
	var login api.GitHubLogin
	r.decode(t, &login)
	resp, err := http.Get(login.AuthorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GitHub sign-in: %d %s", resp.StatusCode, b)
	}
	kr1, _ := sealed.ParseKeyring(k1)
	ss := st.(store.Settings)
	id := store.SSHIdentitySetting
	sid, err := id.Seal(kr1, id.Name(""), []byte(`{"privatePEM":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.PutSetting(t.Context(), id.Name(""), sid); err != nil {
		t.Fatal(err)
	}

	// Rotate: k2 first, k1 still opens; reencrypt reseals every kind.
	e = serverOn(t, st, k2+","+k1, gh, pr)
	r = e.req("POST", "/api/v1/reencrypt", "", "")
	want(t, r, http.StatusOK)
	var res api.ReencryptResult
	r.decode(t, &res)
	got := map[string][2]int{}
	for _, k := range res.Kinds {
		got[k.What] = [2]int{k.Values, k.Resealed}
	}
	for _, k := range []string{store.SecretValues, "webhook secret", "GitHub token", "SSH identity"} {
		if got[k] != [2]int{1, 1} {
			t.Errorf("reencrypt: %s %v, want 1 read, 1 resealed (all: %s)", k, got[k], mustJSON(res))
		}
	}

	// The old key dropped: everything still works.
	e = serverOn(t, st, k2, gh, pr)
	body := githubPayload("https://github.example/octo/app.git", "refs/heads/main", commitA)
	want(t, e.hook(server.GitHubWebhookPath, "push", "after-rotation", sign(ws.Secret, []byte(body)), body), http.StatusAccepted)
	want(t, e.req("GET", "/api/v1/github/repos", "", ""), http.StatusOK)
	r = e.req("POST", "/api/v1/apply", yamlType, secretYAML) // opens the stored value to compare
	want(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"action": "unchanged"`) {
		t.Errorf("the same Secret applied after the rotation: %s", r.body)
	}
	kr2, _ := sealed.ParseKeyring(k2)
	v, err := ss.GetSetting(t.Context(), id.Name(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := id.Open(kr2, id.Name(""), v); err != nil {
		t.Errorf("the SSH identity does not open with the new key alone: %v", err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
