package server_test

import (
	"net/http"
	"strings"
	"testing"

	"bakery.dev/bakery/api/server"
)

const localNodeYAML = `apiVersion: bakery.dev/v1
kind: Node
metadata: {name: self}
spec: {local: true}
`

// TestLocalNodesRefused: a Node with spec.local runs commands on the
// server's host, so unless the server allows them (--allow-local-nodes)
// apply, create and replace refuse it with 403, naming the field and the
// flag, and store nothing — the web UI goes through these same routes.
func TestLocalNodesRefused(t *testing.T) {
	e := newEnv(t)
	check := func(r response, field string) {
		t.Helper()
		want(t, r, http.StatusForbidden)
		er := r.err(t)
		wantDetail(t, er, field, "--allow-local-nodes")
		if !strings.Contains(er.Message, "1 problem") {
			t.Fatalf("message %q", er.Message)
		}
	}
	check(e.req("POST", "/api/v1/nodes", yamlType, localNodeYAML), "spec.local")
	check(e.req("POST", "/api/v1/apply", yamlType, nodeYAML+"---\n"+localNodeYAML), "document 2 (Node/self): spec.local")
	want(t, e.req("GET", "/api/v1/nodes/self", "", ""), http.StatusNotFound)
	want(t, e.req("GET", "/api/v1/nodes/n1", "", ""), http.StatusNotFound) // the bundle applied nothing

	// A remote node cannot be turned into a local one either.
	want(t, e.req("POST", "/api/v1/nodes", yamlType, nodeYAML), http.StatusCreated)
	r := e.req("PUT", "/api/v1/nodes/n1", yamlType, strings.Replace(nodeYAML, "address: 10.0.0.1", "local: true", 1))
	check(r, "spec.local")
}

// TestLocalNodesAllowed: with Config.AllowLocalNodes they are written.
func TestLocalNodesAllowed(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.AllowLocalNodes = true })
	want(t, e.req("POST", "/api/v1/apply", yamlType, localNodeYAML), http.StatusOK)
	want(t, e.req("GET", "/api/v1/nodes/self", "", ""), http.StatusOK)
}
