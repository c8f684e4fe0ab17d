package server_test

import (
	"net/http"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
)

const jsonType = "application/json"

// TestAccountRoutesNeedToken: the user and token routes are ordinary /api/
// routes: no bearer token, 401.
func TestAccountRoutesNeedToken(t *testing.T) {
	e := newEnv(t)
	for _, rt := range []struct{ method, path, body string }{
		{"GET", "/api/v1/tokens", ""},
		{"POST", "/api/v1/tokens", `{"name":"ci"}`},
		{"DELETE", "/api/v1/tokens/admin", ""},
		{"GET", "/api/v1/users", ""},
		{"POST", "/api/v1/users", `{"name":"bob","password":"long enough"}`},
		{"DELETE", "/api/v1/users/bob", ""},
	} {
		r := e.reqToken(rt.method, rt.path, jsonType, rt.body, "")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("%s %s without a token: %d, want 401: %s", rt.method, rt.path, r.status, r.body)
		}
		r.err(t)
	}
	if toks, _ := e.st.ListTokens(t.Context()); len(toks) != 1 {
		t.Fatalf("tokens after unauthenticated requests: %+v", toks)
	}
	if us, _ := e.st.ListUsers(t.Context()); len(us) != 0 {
		t.Fatalf("users after unauthenticated requests: %+v", us)
	}
}

// TestTokenRoutes: create → the list shows it without its secret → the
// token works → revoke → 401.
func TestTokenRoutes(t *testing.T) {
	e := newEnv(t)
	r := e.req("POST", "/api/v1/tokens", jsonType, `{"name":"ci"}`)
	want(t, r, http.StatusCreated)
	var nt api.NewToken
	r.decode(t, &nt)
	if nt.Name != "ci" || !strings.HasPrefix(nt.Value, "bkr_") || nt.CreatedAt.IsZero() {
		t.Fatalf("created token: %+v", nt)
	}
	stored, _ := e.st.ListTokens(t.Context())

	r = e.req("GET", "/api/v1/tokens", "", "")
	want(t, r, http.StatusOK)
	var list api.TokenList
	r.decode(t, &list)
	if len(list.Items) != 2 || list.Items[0].Name != "admin" || list.Items[1].Name != "ci" {
		t.Fatalf("token list: %+v", list)
	}
	for _, st := range stored {
		if strings.Contains(string(r.body), st.Hash) {
			t.Fatalf("the token list shows a hash:\n%s", r.body)
		}
	}
	if strings.Contains(string(r.body), nt.Value) {
		t.Fatalf("the token list shows the token:\n%s", r.body)
	}

	// The new token works, and is the caller.
	want(t, e.reqToken("GET", "/api/v1/nodes", "", "", nt.Value), http.StatusOK)
	want(t, e.reqToken("POST", "/api/v1/apply", yamlType, deployYAML, nt.Value), http.StatusOK)
	o, err := e.st.Get(t.Context(), api.KindDeployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	if a := o.(*api.Deployment).Status.AppliedBy; a == nil || a.By != "ci" {
		t.Fatalf("appliedBy %+v, want ci", a)
	}

	// Names: taken, invalid, unknown fields.
	want(t, e.req("POST", "/api/v1/tokens", jsonType, `{"name":"ci"}`), http.StatusConflict)
	want(t, e.req("POST", "/api/v1/tokens", jsonType, `{"name":"Bad Name"}`), http.StatusBadRequest)
	want(t, e.req("POST", "/api/v1/tokens", jsonType, `{"name":"x","token":"bkr_mine"}`), http.StatusBadRequest)

	// Revoke: the token stops working at once.
	r = e.reqToken("DELETE", "/api/v1/tokens/ci", "", "", nt.Value)
	want(t, r, http.StatusOK)
	var gone api.Token
	r.decode(t, &gone)
	if gone.Name != "ci" {
		t.Fatalf("revoke answered %+v", gone)
	}
	want(t, e.reqToken("GET", "/api/v1/nodes", "", "", nt.Value), http.StatusUnauthorized)
	want(t, e.req("DELETE", "/api/v1/tokens/ci", "", ""), http.StatusNotFound)
	if strings.Contains(e.logs.String(), nt.Value) {
		t.Fatal("the new token appears in the server log")
	}
}

// TestUserRoutes: users are created with a password, listed without its
// hash, and deleted.
func TestUserRoutes(t *testing.T) {
	e := newEnv(t)
	const pw = "bob's long password"
	want(t, e.req("POST", "/api/v1/users", jsonType, `{"name":"bob","password":"short"}`), http.StatusBadRequest)
	want(t, e.req("POST", "/api/v1/users", jsonType, `{"name":"Bob!","password":"`+pw+`"}`), http.StatusBadRequest)
	r := e.req("POST", "/api/v1/users", jsonType, `{"name":"bob","password":"`+pw+`"}`)
	want(t, r, http.StatusCreated)
	var u api.User
	r.decode(t, &u)
	if u.Name != "bob" || u.CreatedAt.IsZero() {
		t.Fatalf("created user: %+v", u)
	}
	want(t, e.req("POST", "/api/v1/users", jsonType, `{"name":"bob","password":"`+pw+`"}`), http.StatusConflict)

	r = e.req("GET", "/api/v1/users", "", "")
	want(t, r, http.StatusOK)
	var list api.UserList
	r.decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].Name != "bob" {
		t.Fatalf("user list: %+v", list)
	}
	stored, err := e.st.GetUser(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(r.body), stored.PasswordHash) || strings.Contains(string(r.body), "assword") {
		t.Fatalf("the user list shows a password or its hash:\n%s", r.body)
	}

	want(t, e.req("DELETE", "/api/v1/users/bob", "", ""), http.StatusOK)
	want(t, e.req("DELETE", "/api/v1/users/bob", "", ""), http.StatusNotFound)
	r = e.req("GET", "/api/v1/users", "", "")
	r.decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("user list after the delete: %+v", list)
	}
	if strings.Contains(e.logs.String(), pw) {
		t.Fatal("the password appears in the server log")
	}
}
