package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/server"
)

func TestHealthAndVersion(t *testing.T) {
	e := newEnv(t)
	r := e.reqToken("GET", "/healthz", "", "", "")
	want(t, r, http.StatusOK)
	if strings.TrimSpace(string(r.body)) != "ok" {
		t.Fatalf("/healthz body %q", r.body)
	}
	r = e.req("GET", "/api/v1/version", "", "")
	want(t, r, http.StatusOK)
	var v api.VersionInfo
	r.decode(t, &v)
	if diff := cmp.Diff(api.VersionInfo{Version: "1.2.3", Commit: "abc123", Store: "file"}, v); diff != "" {
		t.Fatalf("version (-want +got):\n%s", diff)
	}
	if !strings.Contains(e.logs.String(), "path=/api/v1/version status=200") {
		t.Fatalf("no access log line for /api/v1/version:\n%s", e.logs)
	}
}

func TestReadyz(t *testing.T) {
	e := newEnv(t)
	r := e.reqToken("GET", "/readyz", "", "", "")
	want(t, r, http.StatusOK)
	if strings.TrimSpace(string(r.body)) != "ok" {
		t.Fatalf("/readyz body %q", r.body)
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	want(t, e.reqToken("GET", "/readyz", "", "", ""), http.StatusServiceUnavailable)
}

func TestNodeLifecycle(t *testing.T) {
	e := newEnv(t)
	// Create (YAML).
	r := e.req("POST", "/api/v1/nodes", yamlType, nodeYAML)
	want(t, r, http.StatusCreated)
	n := r.object(t, api.KindNode).(*api.Node)
	if n.Metadata.Generation != 1 || n.Metadata.UID == "" || n.Metadata.ResourceVersion == "" {
		t.Fatalf("created metadata %+v", n.Metadata)
	}
	if n.Spec.Port != 22 || n.Spec.User != api.DefaultNodeUser {
		t.Fatalf("node not defaulted: %+v", n.Spec)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/nodes/n1" {
		t.Fatalf("Location %q", loc)
	}
	// Create again: name taken.
	r = e.req("POST", "/api/v1/nodes", yamlType, nodeYAML)
	want(t, r, http.StatusConflict)
	r.err(t)

	// Create (JSON), unlabelled.
	n2 := &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: "n2"}, Spec: api.NodeSpec{Address: "10.0.0.2"}}
	b, _ := json.Marshal(n2)
	want(t, e.req("POST", "/api/v1/nodes", "application/json; charset=utf-8", string(b)), http.StatusCreated)

	// Get.
	r = e.req("GET", "/api/v1/nodes/n1", "", "")
	want(t, r, http.StatusOK)
	got := r.object(t, api.KindNode).(*api.Node)
	if diff := cmp.Diff(n, got); diff != "" {
		t.Fatalf("get differs from create (-create +get):\n%s", diff)
	}
	want(t, e.req("GET", "/api/v1/nodes/missing", "", ""), http.StatusNotFound)
	r = e.req("GET", "/api/v1/nodes/Bad_Name", "", "")
	want(t, r, http.StatusBadRequest)
	wantDetail(t, r.err(t), "metadata.name", "DNS-1123")

	// List, with and without a selector.
	list := func(q string) []string {
		t.Helper()
		r := e.req("GET", "/api/v1/nodes"+q, "", "")
		want(t, r, http.StatusOK)
		var l struct {
			APIVersion string     `json:"apiVersion"`
			Kind       string     `json:"kind"`
			Items      []api.Node `json:"items"`
		}
		r.decode(t, &l)
		if l.APIVersion != api.APIVersion || l.Kind != "NodeList" {
			t.Fatalf("list type %s %s", l.APIVersion, l.Kind)
		}
		names := []string{}
		for _, it := range l.Items {
			names = append(names, it.Metadata.Name)
		}
		return names
	}
	if diff := cmp.Diff([]string{"n1", "n2"}, list("")); diff != "" {
		t.Fatalf("list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"n1"}, list("?labelSelector=role%3Dweb")); diff != "" {
		t.Fatalf("list role=web (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"n2"}, list("?labelSelector=role!%3Dweb")); diff != "" {
		t.Fatalf("list role!=web (-want +got):\n%s", diff)
	}
	r = e.req("GET", "/api/v1/nodes?labelSelector=a%3D%3D%3Db%2C%25", "", "")
	want(t, r, http.StatusBadRequest)
	wantDetail(t, r.err(t), "labelSelector", "invalid")

	// Replace: a spec change bumps generation.
	put := strings.Replace(nodeYAML, "10.0.0.1", "10.0.0.9", 1)
	r = e.req("PUT", "/api/v1/nodes/n1", yamlType, put)
	want(t, r, http.StatusOK)
	up := r.object(t, api.KindNode).(*api.Node)
	if up.Spec.Address != "10.0.0.9" || up.Metadata.Generation != 2 || up.Metadata.UID != n.Metadata.UID {
		t.Fatalf("replaced node %+v %+v", up.Metadata, up.Spec)
	}
	// Replace with a stale resourceVersion.
	stale := strings.Replace(put, "  name: n1\n", "  name: n1\n  resourceVersion: \""+n.Metadata.ResourceVersion+"\"\n", 1)
	r = e.req("PUT", "/api/v1/nodes/n1", yamlType, stale)
	want(t, r, http.StatusConflict)
	r.err(t)
	// The current resourceVersion is accepted.
	fresh := strings.Replace(put, "  name: n1\n", "  name: n1\n  resourceVersion: \""+up.Metadata.ResourceVersion+"\"\n", 1)
	want(t, e.req("PUT", "/api/v1/nodes/n1", yamlType, strings.Replace(fresh, "role: web", "role: db", 1)), http.StatusOK)
	// The path name is authoritative.
	r = e.req("PUT", "/api/v1/nodes/n2", yamlType, put)
	want(t, r, http.StatusBadRequest)
	wantDetail(t, r.err(t), "metadata.name", "does not match")
	// So is a body without a name.
	want(t, e.req("PUT", "/api/v1/nodes/n2", yamlType, strings.Replace(nodeYAML, "  name: n1\n", "", 1)), http.StatusBadRequest)
	// Replacing a missing object.
	want(t, e.req("PUT", "/api/v1/nodes/n3", yamlType, strings.Replace(nodeYAML, "name: n1", "name: n3", 1)), http.StatusNotFound)
	// A Deployment sent to /nodes.
	r = e.req("POST", "/api/v1/nodes", yamlType, deployYAML)
	want(t, r, http.StatusBadRequest)
	wantDetail(t, r.err(t), "kind", "Node")

	// Status.
	r = e.req("GET", "/api/v1/nodes/n1/status", "", "")
	want(t, r, http.StatusOK)
	var st map[string]json.RawMessage
	r.decode(t, &st)
	if _, ok := st["metadata"]; !ok || len(st) != 2 || st["status"] == nil {
		t.Fatalf("status answer %s", r.body)
	}
	want(t, e.req("GET", "/api/v1/nodes/missing/status", "", ""), http.StatusNotFound)

	// Delete.
	r = e.req("DELETE", "/api/v1/nodes/n1", "", "")
	want(t, r, http.StatusOK)
	var del server.Status
	r.decode(t, &del)
	if diff := cmp.Diff(server.Status{Kind: "Status", Status: "Success", Details: server.StatusDetails{Kind: "Node", Name: "n1"}}, del); diff != "" {
		t.Fatalf("delete answer (-want +got):\n%s", diff)
	}
	want(t, e.req("GET", "/api/v1/nodes/n1", "", ""), http.StatusNotFound)
	want(t, e.req("DELETE", "/api/v1/nodes/n1", "", ""), http.StatusNotFound)
}

func TestDeploymentLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.req("POST", "/api/v1/deployments", "application/x-yaml", deployYAML)
	want(t, r, http.StatusCreated)
	d := r.object(t, api.KindDeployment).(*api.Deployment)
	if d.Spec.Source.Ref != api.DefaultRef || d.Spec.Runtime != api.RuntimeSystemd {
		t.Fatalf("deployment not defaulted: %+v", d.Spec)
	}
	r = e.req("GET", "/api/v1/deployments", "", "")
	want(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"kind": "DeploymentList"`) {
		t.Fatalf("list: %s", r.body)
	}
	r = e.req("PUT", "/api/v1/deployments/web", "text/yaml", strings.Replace(deployYAML, "./server", "./server2", 1))
	want(t, r, http.StatusOK)
	if g := r.object(t, api.KindDeployment).GetObjectMeta().Generation; g != 2 {
		t.Fatalf("generation %d after replace", g)
	}
	want(t, e.req("GET", "/api/v1/deployments/web/status", "", ""), http.StatusOK)
	want(t, e.req("DELETE", "/api/v1/deployments/web", "", ""), http.StatusOK)
}

func TestStatusIsNotWritable(t *testing.T) {
	e := newEnv(t)
	body := nodeYAML + "status:\n  reachable: true\n  os: evil\n"
	want(t, e.req("POST", "/api/v1/nodes", yamlType, body), http.StatusCreated)
	n := e.req("GET", "/api/v1/nodes/n1", "", "").object(t, api.KindNode).(*api.Node)
	if n.Status.Reachable || n.Status.OS != "" {
		t.Fatalf("status written through the API: %+v", n.Status)
	}
}

func TestBadInput(t *testing.T) {
	big := deployYAML + "# " + strings.Repeat("x", 10<<20) + "\n"
	tests := []struct {
		name, method, path, ctype, body string
		code                            int
		field, reason                   string // a detail that must be present
	}{
		{"malformed YAML", "POST", "/api/v1/deployments", yamlType, "apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata: [\n", 400, "", ""},
		{"malformed JSON", "POST", "/api/v1/deployments", "application/json", `{"apiVersion": "bakery.dev/v1",`, 400, "", ""},
		{"unknown field", "POST", "/api/v1/deployments", yamlType, strings.Replace(deployYAML, "    port: 8000\n", "    port: 8000\n    portt: 1\n", 1), 400, "spec.run.portt", "unknown field"},
		{"name ../etc", "POST", "/api/v1/nodes", yamlType, strings.Replace(nodeYAML, "name: n1", "name: ../etc", 1), 400, "metadata.name", "DNS-1123"},
		{"port 0", "POST", "/api/v1/deployments", yamlType, strings.Replace(deployYAML, "port: 8000", "port: 0", 1), 400, "spec.run.port", "1-65534"},
		{"wrong type", "POST", "/api/v1/deployments", yamlType, strings.Replace(deployYAML, "port: 8000", "port: eighty", 1), 400, "spec.run.port", ""},
		{"empty body", "POST", "/api/v1/nodes", yamlType, "", 400, "", ""},
		{"two objects", "POST", "/api/v1/nodes", yamlType, nodeYAML + "---\n" + strings.Replace(nodeYAML, "n1", "n2", 1), 400, "", ""},
		{"10 MB manifest", "POST", "/api/v1/deployments", yamlType, big, 413, "", ""},
		{"10 MB apply", "POST", "/api/v1/apply", yamlType, big, 413, "", ""},
		{"text/plain", "POST", "/api/v1/deployments", "text/plain", deployYAML, 415, "", ""},
		{"no content type", "POST", "/api/v1/apply", "", deployYAML, 415, "", ""},
		{"bad content type", "PUT", "/api/v1/deployments/web", "application/json;;", deployYAML, 415, "", ""},
		{"bad dryRun", "POST", "/api/v1/apply?dryRun=maybe", yamlType, deployYAML, 400, "dryRun", "true or false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.req(tc.method, tc.path, tc.ctype, tc.body)
			want(t, r, tc.code)
			er := r.err(t)
			if tc.field != "" {
				wantDetail(t, er, tc.field, tc.reason)
			}
			// Nothing was stored.
			for _, res := range []string{"nodes", "deployments"} {
				r := e.req("GET", "/api/v1/"+res, "", "")
				if strings.Contains(string(r.body), `"name"`) {
					t.Fatalf("a refused request stored an object: %s", r.body)
				}
			}
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	r := e.req("GET", "/api/v1/pods", "", "")
	want(t, r, http.StatusNotFound)
	r.err(t)
	r = e.req("GET", "/api/v2/nodes", "", "")
	want(t, r, http.StatusNotFound)
	r.err(t)
	r = e.req("PATCH", "/api/v1/nodes/n1", "", "")
	want(t, r, http.StatusMethodNotAllowed)
	r.err(t)
	if allow := r.header.Get("Allow"); allow != "GET, PUT, DELETE" {
		t.Fatalf("Allow %q", allow)
	}
	r = e.req("GET", "/api/v1/apply", "", "")
	want(t, r, http.StatusMethodNotAllowed)
	r.err(t)
	want(t, e.reqToken("GET", "/nope", "", "", ""), http.StatusNotFound)
}

func TestIngressHostConflictOnCreateAndReplace(t *testing.T) {
	e := newEnv(t)
	want(t, e.req("POST", "/api/v1/deployments", yamlType, deployment("a", "a.example.com", "shared.example.com")), http.StatusCreated)
	want(t, e.req("POST", "/api/v1/deployments", yamlType, deployment("b", "b.example.com")), http.StatusCreated)
	// Create claiming a's host.
	r := e.req("POST", "/api/v1/deployments", yamlType, deployment("c", "shared.example.com"))
	want(t, r, http.StatusConflict)
	er := r.err(t)
	if !strings.Contains(er.Message, "Deployment/a") || !strings.Contains(er.Message, "Deployment/c") {
		t.Fatalf("conflict must name both deployments: %q", er.Message)
	}
	wantDetail(t, er, "spec.ingress.hosts[0]", "Deployment/a")
	want(t, e.req("GET", "/api/v1/deployments/c", "", ""), http.StatusNotFound)
	// Replace b to claim a's host.
	r = e.req("PUT", "/api/v1/deployments/b", yamlType, deployment("b", "b.example.com", "shared.example.com"))
	want(t, r, http.StatusConflict)
	wantDetail(t, r.err(t), "spec.ingress.hosts[1]", "Deployment/a")
	b := e.req("GET", "/api/v1/deployments/b", "", "").object(t, api.KindDeployment).(*api.Deployment)
	if len(b.Spec.Ingress.Hosts) != 1 {
		t.Fatalf("refused replace was stored: %v", b.Spec.Ingress.Hosts)
	}
	// Replacing a with its own hosts is fine.
	want(t, e.req("PUT", "/api/v1/deployments/a", yamlType, deployment("a", "shared.example.com")), http.StatusOK)
}

func TestBodyLimits(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.MaxBodyBytes = 1 << 10 })
	// A body of unknown length (chunked) over the limit.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(deployYAML))
		for range 64 {
			if _, err := pw.Write([]byte("# " + strings.Repeat("x", 1<<10) + "\n")); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.ts.URL+"/api/v1/deployments", pr)
	req.Header.Set("Content-Type", yamlType)
	req.Header.Set("Authorization", "Bearer "+e.token)
	r := e.send(req)
	want(t, r, http.StatusRequestEntityTooLarge)
	r.err(t)
	pr.Close()
	// Within the limit.
	want(t, e.req("POST", "/api/v1/deployments", yamlType, deployYAML), http.StatusCreated)
	// No body needs no content type: a 400 for the missing object, not 415.
	r = e.req("POST", "/api/v1/nodes", "", "")
	want(t, r, http.StatusBadRequest)
	r.err(t)
}
