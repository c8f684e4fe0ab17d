package ui_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
)

// withKeyring gives the server an encryption key to seal secrets with.
func withKeyring(t *testing.T) (func(*server.Config), *sealed.Keyring) {
	t.Helper()
	kr, err := sealed.ParseKeyring(sealed.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return func(c *server.Config) { c.Keyring = kr }, kr
}

// canary returns a value that appears nowhere unless it leaked.
func canary(t *testing.T) string {
	b := make([]byte, 12)
	rand.Read(b)
	return "canary-" + hex.EncodeToString(b)
}

// openSecret opens the stored value of secret/key with kr.
func openSecret(t *testing.T, st store.Store, kr *sealed.Keyring, secret, key string) string {
	t.Helper()
	o, err := st.Get(t.Context(), api.KindSecret, secret)
	if err != nil {
		t.Fatal(err)
	}
	sec := o.(*api.Secret)
	if len(sec.Spec.Data) != 0 {
		t.Fatalf("secret %s stores plain data", secret)
	}
	b, err := base64.StdEncoding.DecodeString(sec.Spec.Sealed[key])
	if err != nil {
		t.Fatalf("secret %s key %s: %v (keys %v)", secret, key, err, sec.Spec.Keys())
	}
	pt, err := kr.Open(b, api.SecretAD(secret, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(pt)
}

func storedKeys(t *testing.T, st store.Store, secret string) []string {
	t.Helper()
	o, err := st.Get(t.Context(), api.KindSecret, secret)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.Secret).Spec.Keys()
}

var secretGets = []string{"/ui/secrets", "/ui/secrets/db", "/ui/deployments/hello/traffic"}

var secretPosts = []string{"/ui/secrets", "/ui/secrets/db", "/ui/secrets/db/delete", "/ui/secrets/db/keys/PASSWORD/delete"}

// TestSecretPagesNeedLoginAndCSRF: without a session the pages send to
// the login page and the forms answer 401; with a session but a missing
// or wrong CSRF token every form answers 403 and nothing changes.
func TestSecretPagesNeedLoginAndCSRF(t *testing.T) {
	conf, kr := withKeyring(t)
	e := newEnvWith(t, "file", false, conf)
	e.seed()
	b := e.loggedIn()
	value := canary(t)
	if code, _, h := b.post("/ui/secrets", url.Values{"name": {"db"}, "key": {"PASSWORD"}, "value": {value}}); code != http.StatusSeeOther {
		t.Fatalf("set: %d %v", code, h)
	}
	before, _ := e.st.Get(t.Context(), api.KindSecret, "db")

	anon := e.browser()
	for _, p := range secretGets {
		if code, _, h := anon.get(p); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/ui/login?next=") {
			t.Errorf("GET %s without a session: %d to %q, want 303 to the login page", p, code, h.Get("Location"))
		}
	}
	for _, p := range secretPosts {
		if code, body, _ := anon.post(p, url.Values{"csrf": {"x"}, "name": {"db"}, "key": {"PASSWORD"}, "value": {"other-value"}}); code != http.StatusUnauthorized || strings.Contains(body, value) {
			t.Errorf("POST %s without a session: %d, want 401", p, code)
		}
		for _, tok := range []string{"", "wrong-token"} {
			code, body, _ := b.post(p, url.Values{"csrf": {tok}, "name": {"db"}, "key": {"PASSWORD"}, "value": {"other-value"}})
			if code != http.StatusForbidden || !strings.Contains(body, "CSRF token") || strings.Contains(body, value) {
				t.Errorf("POST %s with csrf %q: %d, want 403 naming the CSRF token", p, tok, code)
			}
		}
	}
	after, err := e.st.Get(t.Context(), api.KindSecret, "db")
	if err != nil || after.GetObjectMeta().ResourceVersion != before.GetObjectMeta().ResourceVersion {
		t.Fatalf("the secret changed: %v", err)
	}
	if got := openSecret(t, e.st, kr, "db", "PASSWORD"); got != value {
		t.Fatalf("value changed")
	}
}

// TestSecretValuesNeverShown sets, updates and deletes secret values
// through the forms, in both stores, and checks that a canary value
// reaches the store sealed (and opens to itself) but appears in no answer
// of the UI: not after it was set, not in the form after a validation
// error or a conflict, not on any page. Names and keys with <script> are
// rejected with their field path, escaped.
func TestSecretValuesNeverShown(t *testing.T) {
	for _, kind := range stores {
		t.Run(kind, func(t *testing.T) {
			conf, kr := withKeyring(t)
			e := newEnvWith(t, kind, false, conf)
			e.seed()
			d := deployment("shop")
			d.Spec.Run.EnvFrom = []api.EnvFromSource{{SecretRef: "db"}}
			d.Spec.Run.Env = []api.EnvVar{{Name: "API_TOKEN", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "tokens", Key: "STRIPE"}}}}
			e.create(d)
			b := e.loggedIn()
			v1, v2, v3 := canary(t), canary(t), canary(t)
			var bodies []string
			seen := func(what string, code int, body string, h http.Header) {
				t.Helper()
				bodies = append(bodies, what+"\n"+body)
				if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(body) || strings.Contains(body, " style=") || strings.Contains(body, " onclick=") {
					t.Errorf("%s: inline script or style in the answer (the CSP forbids them)", what)
				}
				for _, v := range []string{v1, v2, v3} {
					if strings.Contains(body, v) || strings.Contains(h.Get("Location"), v) {
						t.Errorf("%s (%d): a secret value is in the answer:\n%s", what, code, body)
					}
				}
			}
			post := func(path string, form url.Values, want int) (string, http.Header) {
				t.Helper()
				code, body, h := b.post(path, form)
				seen("POST "+path, code, body, h)
				if code != want {
					t.Fatalf("POST %s: %d, want %d\n%s", path, code, want, body)
				}
				return body, h
			}
			get := func(path string) string {
				t.Helper()
				code, body, h := b.get(path)
				seen("GET "+path, code, body, h)
				if code != http.StatusOK {
					t.Fatalf("GET %s: %d\n%s", path, code, body)
				}
				return body
			}

			// Create: sealed in the store, the page shows the key only.
			_, h := post("/ui/secrets", url.Values{"name": {"db"}, "key": {"PASSWORD"}, "value": {v1 + "\r\nline 2"}}, http.StatusSeeOther)
			if h.Get("Location") != "/ui/secrets/db?set=PASSWORD" {
				t.Fatalf("after set: to %q", h.Get("Location"))
			}
			if got := openSecret(t, e.st, kr, "db", "PASSWORD"); got != v1+"\nline 2" {
				t.Fatalf("stored value %q, want the canary with LF line ends", got)
			}
			body := get(h.Get("Location"))
			for _, s := range []string{"Key PASSWORD set", `<td class="mono">PASSWORD</td>`, `<a href="/ui/deployments/shop">shop</a>`, `<textarea name="value" id="secret-value"`, `data-confirm="Delete secret db? It is used by shop`} {
				if !strings.Contains(body, s) {
					t.Errorf("secret page lacks %q:\n%s", s, body)
				}
			}
			// Update from the secret's page, then a second key.
			post("/ui/secrets/db", url.Values{"key": {"PASSWORD"}, "value": {v2}}, http.StatusSeeOther)
			post("/ui/secrets/db", url.Values{"key": {"USER"}, "value": {v3}}, http.StatusSeeOther)
			if got := openSecret(t, e.st, kr, "db", "PASSWORD"); got != v2 {
				t.Fatalf("PASSWORD after the update: %q", got)
			}
			if got := openSecret(t, e.st, kr, "db", "USER"); got != v3 {
				t.Fatalf("USER: %q", got)
			}
			post("/ui/secrets", url.Values{"name": {"tokens"}, "key": {"OTHER"}, "value": {v3}}, http.StatusSeeOther)

			// Validation errors: the field path, escaped; the value is not
			// sent back, not even into the form.
			for _, tc := range []struct {
				path  string
				form  url.Values
				field string
			}{
				{"/ui/secrets", url.Values{"name": {"db"}, "key": {"bad key!"}, "value": {v1}}, "spec.data.bad key!"},
				{"/ui/secrets", url.Values{"name": {"db"}, "key": {evil}, "value": {v1}}, "spec.data." + evil},
				{"/ui/secrets/db", url.Values{"key": {"PORT"}, "value": {v1}}, "spec.data.PORT"},
				{"/ui/secrets", url.Values{"name": {evil}, "key": {"A"}, "value": {v1}}, "metadata.name"},
				{"/ui/secrets", url.Values{"name": {"db"}, "key": {""}, "value": {v1}}, "spec.data"},
				{"/ui/secrets", url.Values{"name": {"db"}, "key": {"BIG"}, "value": {strings.Repeat(v1, api.MaxSecretValue/len(v1)+1)}}, "spec.data.BIG"},
			} {
				body, _ := post(tc.path, tc.form, http.StatusBadRequest)
				esc := strings.NewReplacer("<", "&lt;", ">", "&gt;", "!", "!").Replace(tc.field)
				if !strings.Contains(body, `<ul class="problems" id="problems">`) || !strings.Contains(body, "<code>"+esc+"</code>") {
					t.Errorf("%v: the problem list lacks <code>%s</code>:\n%s", tc.form["key"], esc, body)
				}
				if strings.Contains(body, "<script>alert") {
					t.Errorf("%v: unescaped <script> in the answer", tc.form["key"])
				}
				if !strings.Contains(body, `<textarea name="value" id="secret-value" rows="3" spellcheck="false" autocapitalize="off" autocomplete="off" placeholder="sent to the server, sealed, never shown again"></textarea>`) {
					t.Errorf("the value field is not empty after an error:\n%s", body)
				}
			}
			if got := storedKeys(t, e.st, "db"); !slices.Equal(got, []string{"PASSWORD", "USER"}) {
				t.Fatalf("keys after the rejected writes: %v", got)
			}

			// Every page, with the secrets stored.
			for _, p := range append(slices.Clone(getPages), "/ui/secrets", "/ui/secrets/db", "/ui/secrets/tokens", "/ui/deployments/shop", "/ui/editor?deployment=shop") {
				if strings.HasSuffix(p, "/stream") || p == "/ui/" {
					continue
				}
				get(p)
			}
			body = get("/ui/deployments/shop")
			for _, s := range []string{`id="secret-refs"`, `<a href="/ui/secrets/db">db</a>: all keys`, `<a href="/ui/secrets/tokens">tokens</a>: STRIPE as API_TOKEN (missing)`} {
				if !strings.Contains(body, s) {
					t.Errorf("deployment page lacks %q:\n%s", s, body)
				}
			}
			body = get("/ui/secrets")
			for _, s := range []string{`<a href="/ui/secrets/db">db</a>`, `<span class="tag mono">PASSWORD</span> <span class="tag mono">USER</span>`, `<a href="/ui/deployments/shop">shop</a>`} {
				if !strings.Contains(body, s) {
					t.Errorf("secrets list lacks %q:\n%s", s, body)
				}
			}

			// Delete a key, a missing key, the secret.
			_, h = post("/ui/secrets/db/keys/USER/delete", nil, http.StatusSeeOther)
			if h.Get("Location") != "/ui/secrets/db?unset=USER" || !slices.Equal(storedKeys(t, e.st, "db"), []string{"PASSWORD"}) {
				t.Fatalf("after deleting USER: to %q, keys %v", h.Get("Location"), storedKeys(t, e.st, "db"))
			}
			if got := openSecret(t, e.st, kr, "db", "PASSWORD"); got != v2 {
				t.Fatalf("PASSWORD after deleting USER: %q", got)
			}
			post("/ui/secrets/db/keys/NOPE/delete", nil, http.StatusNotFound)
			_, h = post("/ui/secrets/db/delete", nil, http.StatusSeeOther)
			if _, err := e.st.Get(t.Context(), api.KindSecret, "db"); !errors.Is(err, store.ErrNotFound) || h.Get("Location") != "/ui/secrets?deleted=db" {
				t.Fatalf("after deleting db: %v, to %q", err, h.Get("Location"))
			}
			if body := get("/ui/secrets?deleted=db"); !strings.Contains(body, "Secret db deleted.") || strings.Contains(body, `href="/ui/secrets/db"`) {
				t.Errorf("list after the delete:\n%s", body)
			}
			get("/ui/deployments/shop")
			if len(bodies) < 30 {
				t.Fatalf("only %d answers checked", len(bodies))
			}
		})
	}
}

// TestSecretSetWithoutKey: a server without an encryption key refuses
// values with a message saying how to give it one; the value is not
// echoed and nothing is stored.
func TestSecretSetWithoutKey(t *testing.T) {
	e := newEnv(t, false)
	b := e.loggedIn()
	v := canary(t)
	code, body, _ := b.post("/ui/secrets", url.Values{"name": {"db"}, "key": {"PASSWORD"}, "value": {v}})
	if code != http.StatusBadRequest || !strings.Contains(body, "no encryption key") || strings.Contains(body, v) {
		t.Fatalf("without a key: %d\n%s", code, body)
	}
	if _, err := e.st.Get(t.Context(), api.KindSecret, "db"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stored: %v", err)
	}
}
