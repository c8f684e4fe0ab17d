package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

func apply(t *testing.T, e *env, query, body string) api.ApplyResponse {
	t.Helper()
	r := e.req("POST", "/api/v1/apply"+query, yamlType, body)
	want(t, r, http.StatusOK)
	var a api.ApplyResponse
	r.decode(t, &a)
	return a
}

// actions summarises results as "Kind/name action generation".
func actions(a api.ApplyResponse) []string {
	var out []string
	for _, r := range a.Results {
		out = append(out, fmt.Sprintf("%s/%s %s %d", r.Kind, r.Name, r.Action, r.Generation))
	}
	return out
}

func stored(t *testing.T, e *env, kind string) []string {
	t.Helper()
	l, err := e.st.List(t.Context(), kind, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, o := range l {
		out = append(out, o.GetObjectMeta().Name)
	}
	return out
}

func TestApply(t *testing.T) {
	e := newEnv(t)
	bundle := nodeYAML + "---\n" + deployYAML

	// Dry run: says what would happen, writes nothing.
	a := apply(t, e, "?dryRun=true", bundle)
	if !a.DryRun {
		t.Fatal("dryRun not reported")
	}
	if diff := cmp.Diff([]string{"Node/n1 created 1", "Deployment/web created 1"}, actions(a)); diff != "" {
		t.Fatalf("dry run (-want +got):\n%s", diff)
	}
	if len(stored(t, e, api.KindNode))+len(stored(t, e, api.KindDeployment)) != 0 {
		t.Fatal("dry run wrote objects")
	}

	// Create.
	a = apply(t, e, "", bundle)
	if a.DryRun {
		t.Fatal("dryRun reported on a real apply")
	}
	if diff := cmp.Diff([]string{"Node/n1 created 1", "Deployment/web created 1"}, actions(a)); diff != "" {
		t.Fatalf("apply (-want +got):\n%s", diff)
	}
	d := a.Results[1].Diff
	if !strings.HasPrefix(d, "--- Deployment/web (live)\n+++ Deployment/web (applied)\n") || !strings.Contains(d, "+    port: 8000") {
		t.Fatalf("created diff:\n%s", d)
	}
	for _, line := range strings.Split(strings.TrimSpace(d), "\n")[3:] {
		if !strings.HasPrefix(line, "+") {
			t.Fatalf("created diff has a line that is not an addition: %q\n%s", line, d)
		}
	}

	// Again: unchanged, empty diff.
	a = apply(t, e, "", bundle)
	if diff := cmp.Diff([]string{"Node/n1 unchanged 1", "Deployment/web unchanged 1"}, actions(a)); diff != "" {
		t.Fatalf("re-apply (-want +got):\n%s", diff)
	}
	for _, r := range a.Results {
		if r.Diff != "" {
			t.Fatalf("unchanged %s/%s has a diff:\n%s", r.Kind, r.Name, r.Diff)
		}
	}

	// Edit: configured, generation 2, the diff shows the change.
	edited := nodeYAML + "---\n" + strings.Replace(deployYAML, "port: 8000", "port: 9000", 1)
	a = apply(t, e, "?dryRun=true", edited)
	if diff := cmp.Diff([]string{"Node/n1 unchanged 1", "Deployment/web configured 2"}, actions(a)); diff != "" {
		t.Fatalf("dry-run edit (-want +got):\n%s", diff)
	}
	if got := e.req("GET", "/api/v1/deployments/web", "", "").object(t, api.KindDeployment).GetObjectMeta().Generation; got != 1 {
		t.Fatalf("dry run changed generation to %d", got)
	}
	a = apply(t, e, "", edited)
	if diff := cmp.Diff([]string{"Node/n1 unchanged 1", "Deployment/web configured 2"}, actions(a)); diff != "" {
		t.Fatalf("edit (-want +got):\n%s", diff)
	}
	d = a.Results[1].Diff
	if !strings.Contains(d, "-    port: 8000\n") || !strings.Contains(d, "+    port: 9000\n") {
		t.Fatalf("edit diff does not show the port change:\n%s", d)
	}
	// A label change configures without a new generation.
	a = apply(t, e, "", strings.Replace(nodeYAML, "role: web", "role: db", 1))
	if diff := cmp.Diff([]string{"Node/n1 configured 1"}, actions(a)); diff != "" {
		t.Fatalf("label edit (-want +got):\n%s", diff)
	}
	if !strings.Contains(a.Results[0].Diff, "+    role: db") {
		t.Fatalf("label diff:\n%s", a.Results[0].Diff)
	}
}

func TestApplyJSON(t *testing.T) {
	e := newEnv(t)
	body := `[{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"n1"},"spec":{"address":"10.0.0.1"}},
	          {"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"n2"},"spec":{"address":"10.0.0.2"}}]`
	r := e.req("POST", "/api/v1/apply", "application/json", body)
	want(t, r, http.StatusOK)
	list := `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"n3"},"spec":{"address":"10.0.0.3"}}]}`
	want(t, e.req("POST", "/api/v1/apply", "application/json", list), http.StatusOK)
	if diff := cmp.Diff([]string{"n1", "n2", "n3"}, stored(t, e, api.KindNode)); diff != "" {
		t.Fatalf("stored (-want +got):\n%s", diff)
	}
}

func TestApplyRefusesBadBundles(t *testing.T) {
	tests := []struct {
		name   string
		bundle string
		code   int
		field  string // a detail that must be present
		reason string
	}{
		{"one bad object", nodeYAML + "---\n" + strings.Replace(deployYAML, "port: 8000", "port: 0", 1), 400,
			"document 2 (Deployment/web): spec.run.port", "1-65534"},
		{"unknown field", nodeYAML + "---\n" + strings.Replace(deployYAML, "  nodes: [n1]\n", "  nodes: [n1]\n  nodez: [n2]\n", 1), 400,
			"document 2 (Deployment/web): spec.nodez", "unknown field"},
		{"malformed YAML", nodeYAML + "---\nkind: [\n", 400, "", ""},
		{"duplicate", nodeYAML + "---\n" + deployYAML + "---\n" + strings.Replace(nodeYAML, "10.0.0.1", "10.0.0.2", 1), 400,
			"", "Node/n1"},
		{"ingress host twice", deployment("a", "x.example.com") + "---\n" + nodeYAML + "---\n" + deployment("b", "x.example.com"), 409,
			"document 3 (Deployment/b): spec.ingress.hosts[0]", "Deployment/a"},
		{"empty", "# nothing\n", 400, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			for _, q := range []string{"", "?dryRun=true"} {
				r := e.req("POST", "/api/v1/apply"+q, yamlType, tc.bundle)
				want(t, r, tc.code)
				er := r.err(t)
				if tc.field != "" || tc.reason != "" {
					found := false
					for _, d := range er.Details {
						if (tc.field == "" || d.Field == tc.field) && strings.Contains(d.Field+" "+d.Reason, tc.reason) {
							found = true
						}
					}
					if !found {
						t.Fatalf("no detail %q ~ %q in %+v", tc.field, tc.reason, er.Details)
					}
				}
				if tc.name == "duplicate" && !(strings.Contains(r.String(), "document 1") && strings.Contains(r.String(), "document 3")) {
					t.Fatalf("duplicate must name both documents: %s", r.body)
				}
				if tc.name == "ingress host twice" && !(strings.Contains(er.Message, "Deployment/a") && strings.Contains(er.Message, "Deployment/b")) {
					t.Fatalf("conflict must name both deployments: %q", er.Message)
				}
			}
			if n, d := stored(t, e, api.KindNode), stored(t, e, api.KindDeployment); len(n)+len(d) != 0 {
				t.Fatalf("a refused bundle stored %v %v", n, d)
			}
		})
	}
}

func (r response) String() string { return string(r.body) }

func TestApplyHostClaimedByStoredDeployment(t *testing.T) {
	e := newEnv(t)
	apply(t, e, "", deployment("a", "x.example.com"))
	r := e.req("POST", "/api/v1/apply", yamlType, nodeYAML+"---\n"+deployment("b", "x.example.com"))
	want(t, r, http.StatusConflict)
	wantDetail(t, r.err(t), "document 2 (Deployment/b): spec.ingress.hosts[0]", "Deployment/a")
	if n := stored(t, e, api.KindNode); len(n) != 0 {
		t.Fatalf("the bundle's node was stored: %v", n)
	}
	// Moving the host from a to b in one bundle is fine.
	a := apply(t, e, "", deployment("a", "y.example.com")+"---\n"+deployment("b", "x.example.com"))
	if diff := cmp.Diff([]string{"Deployment/a configured 2", "Deployment/b created 1"}, actions(a)); diff != "" {
		t.Fatalf("host move (-want +got):\n%s", diff)
	}
}

func TestApplyRace(t *testing.T) {
	e := newEnv(t)
	// Two clients apply three-object bundles at once, repeatedly. Each
	// apply succeeds or gets a clean 409; afterwards every object holds
	// the value of one bundle (never a mix within a bundle's round).
	bundle := func(client, round int) string {
		var docs []string
		for i := range 3 {
			d := deployment(fmt.Sprintf("app%d", i))
			d += fmt.Sprintf("  keepReleases: %d\n", 1+client*10+round)
			docs = append(docs, d)
		}
		return strings.Join(docs, "---\n")
	}
	const rounds = 5
	var wg sync.WaitGroup
	errs := make(chan string, 2*rounds)
	for c := range 2 {
		wg.Go(func() {
			for r := range rounds {
				resp := e.req("POST", "/api/v1/apply", yamlType, bundle(c, r))
				if resp.status != http.StatusOK && resp.status != http.StatusConflict {
					errs <- fmt.Sprintf("client %d round %d: %d %s", c, r, resp.status, resp.body)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	l, err := e.st.List(t.Context(), api.KindDeployment, store.ListOptions{})
	if err != nil || len(l) != 3 {
		t.Fatalf("after racing applies: %d objects, %v", len(l), err)
	}
	keep := l[0].(*api.Deployment).Spec.KeepReleases
	for _, o := range l {
		if k := o.(*api.Deployment).Spec.KeepReleases; k != keep {
			t.Fatalf("half-applied bundles: keepReleases %d and %d", keep, k)
		}
	}
}

func TestApplyNamelessDocument(t *testing.T) {
	e := newEnv(t)
	r := e.req("POST", "/api/v1/apply", yamlType, nodeYAML+"---\n"+strings.Replace(deployYAML, "  name: web\n", "", 1))
	want(t, r, http.StatusBadRequest)
	found := false
	for _, d := range r.err(t).Details {
		found = found || strings.HasPrefix(d.Field, "document 2") && strings.HasSuffix(d.Field, "metadata.name")
	}
	if !found {
		t.Fatalf("no detail names document 2's metadata.name: %s", r.body)
	}
	if n := stored(t, e, api.KindNode); len(n) != 0 {
		t.Fatalf("stored %v", n)
	}
}
