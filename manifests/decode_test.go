package manifests_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/manifests"
	"github.com/google/go-cmp/cmp"
)

func intp(i int) *int { return &i }

func dur(d time.Duration) *api.Duration { return &api.Duration{Duration: d} }

func node(name, addr string) *api.Node {
	return &api.Node{
		TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: name},
		Spec:     api.NodeSpec{Address: addr},
	}
}

func deployment(name string) *api.Deployment {
	return &api.Deployment{
		TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment},
		Metadata: api.ObjectMeta{Name: name},
		Spec: api.DeploymentSpec{
			Source: api.Source{Repo: "/srv/" + name + ".git"},
			Nodes:  []string{"web-1"},
			Run:    api.Run{Command: "./server"},
		},
	}
}

const nodeYAML = `apiVersion: bakery.dev/v1
kind: Node
metadata:
  name: web-1
spec:
  address: 10.0.0.1
`

const webYAML = `apiVersion: bakery.dev/v1
kind: Deployment
metadata:
  name: web
spec:
  source:
    repo: /srv/web.git
  nodes: [web-1]
  run:
    command: ./server
`

func TestDecode(t *testing.T) {
	full := deployment("web")
	full.Metadata.Labels = map[string]string{"app": "web", "version": "1"}
	full.Metadata.UID = "0b5c"
	full.Metadata.Generation = 3
	full.Metadata.ResourceVersion = "17"
	full.Metadata.CreationTimestamp = api.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	full.Spec.Run.Port = intp(8080)
	full.Spec.Run.Env = []api.EnvVar{{Name: "GREETING", Value: "yes"}}
	full.Spec.HealthCheck = api.HealthCheck{Path: "/healthz", Timeout: dur(5 * time.Second), Retries: 3}
	full.Spec.Ingress = &api.Ingress{Hosts: []string{"web.example.test"}}

	tests := []struct {
		name string
		in   string
		want []api.Object
	}{
		{"empty", "", nil},
		{"only comments", "# nothing\n\n---\n# still nothing\n---\n", nil},
		{"one YAML document", nodeYAML, []api.Object{node("web-1", "10.0.0.1")}},
		{
			"several YAML documents, empty ones skipped",
			"# a bundle\n---\n" + nodeYAML + "---\n---\n# comment\n" + webYAML + "...\n",
			[]api.Object{node("web-1", "10.0.0.1"), deployment("web")},
		},
		{"CRLF and BOM", "\xef\xbb\xbf" + strings.ReplaceAll(nodeYAML, "\n", "\r\n") + "---\r\n" + strings.ReplaceAll(webYAML, "\n", "\r\n"),
			[]api.Object{node("web-1", "10.0.0.1"), deployment("web")}},
		{"content on the --- line", "--- {apiVersion: bakery.dev/v1, kind: Node, metadata: {name: a1}, spec: {address: a}}\n",
			[]api.Object{node("a1", "a")}},
		{
			"get -o yaml output: server metadata kept, status ignored",
			`apiVersion: bakery.dev/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, version: "1"}
  uid: 0b5c
  generation: 3
  resourceVersion: "17"
  creationTimestamp: 2026-01-02T03:04:05Z
spec:
  source: {repo: /srv/web.git}
  nodes: [web-1]
  run:
    command: ./server
    port: 8080
    env:
    - {name: GREETING, value: "yes"}
  healthCheck: {path: /healthz, timeout: 5s, retries: 3}
  ingress:
    hosts: [web.example.test]
status:
  observedGeneration: 3
  conditions: [{type: Ready, status: "True"}]
  whatever: {the: control plane wrote}
`,
			[]api.Object{full},
		},
		{"a nameless object is kept (Check reports it)", "apiVersion: bakery.dev/v1\nkind: Node\nspec: {address: x}\n---\n" +
			"apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {labels: {a: b}}\n",
			[]api.Object{node("", "x"), &api.Node{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode}, Metadata: api.ObjectMeta{Labels: map[string]string{"a": "b"}}}}},
		{"null fields leave defaults", nodeYAML + "  port: null\n  hostKey: ~\n", []api.Object{node("web-1", "10.0.0.1")}},
		{"JSON object", `{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"web-1"},"spec":{"address":"10.0.0.1"}}`,
			[]api.Object{node("web-1", "10.0.0.1")}},
		{"JSON array", ` [{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"a"},"spec":{"address":"x"}},
			{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"b"},"spec":{"address":"y"}}]`,
			[]api.Object{node("a", "x"), node("b", "y")}},
		{"JSON List", `{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":""},"items":[
			{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"a"},"spec":{"address":"x"}}]}`,
			[]api.Object{node("a", "x")}},
		{"JSON List bakery.dev/v1, no items", `{"apiVersion":"bakery.dev/v1","kind":"List","items":[]}`, nil},
		{"YAML List", "apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(nodeYAML, "\n", "\n  ") + "\n---\n" + webYAML,
			[]api.Object{node("web-1", "10.0.0.1"), deployment("web")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := manifests.Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

// wantErr is an expected problem; Reason need only be contained in the
// reason found.
type wantErr struct {
	Source     string
	Index      int
	Kind, Name string
	Field      string
	Reason     string
}

func simplify(t *testing.T, err error, want []wantErr) []wantErr {
	t.Helper()
	var es manifests.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %v (%T) is not manifests.Errors", err, err)
	}
	got := make([]wantErr, len(es))
	for i, e := range es {
		got[i] = wantErr{e.Source, e.Index, e.Kind, e.Name, e.Field, e.Reason}
		if i < len(want) && want[i].Reason != "" && strings.Contains(e.Reason, want[i].Reason) {
			got[i].Reason = want[i].Reason
		}
	}
	return got
}

func TestDecodeErrors(t *testing.T) {
	deploy := func(spec string) string {
		return "apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n" + spec
	}
	tests := []struct {
		name string
		in   string
		want []wantErr
	}{
		{
			"malformed YAML, with absolute line numbers, in every document",
			nodeYAML + "---\nkind: Node\nspec: [\n---\nkind: Node\nmetadata: {name: x}\n\tspec: {}\n---\na: b: c\n",
			[]wantErr{
				{Index: 2, Reason: "invalid YAML: line 9: did not find expected node content"},
				{Index: 3, Reason: "invalid YAML: line 13: found character that cannot start any token"},
				{Index: 4, Reason: "invalid YAML: mapping values are not allowed"},
			},
		},
		{
			"unknown fields at any depth, with suggestions",
			deploy("  source: {repo: r}\n  healthCheck:\n    pathh: /x\n  run: {command: c, env: [{name: A, valu: b}]}\n  ingress: {hosts: [h], tls: {email: e, sever: s}}\n") + "Status: {}\nextra: 1\n",
			[]wantErr{
				{Index: 1, Kind: "Deployment", Name: "web", Field: "Status", Reason: `unknown field (did you mean "status"?)`},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "extra", Reason: "unknown field"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.healthCheck.pathh", Reason: `unknown field (did you mean "path"?)`},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.ingress.tls.sever", Reason: `unknown field (did you mean "server"?)`},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.run.env[0].valu", Reason: `unknown field (did you mean "value"?)`},
			},
		},
		{
			"unknown metadata field",
			"apiVersion: bakery.dev/v1\nkind: Node\nmetadata:\n  name: a\n  namespace: default\nspec: {address: a}\n",
			[]wantErr{{Index: 1, Kind: "Node", Name: "a", Field: "metadata.namespace", Reason: "unknown field"}},
		},
		{
			"YAML 1.1 booleans are not strings",
			"apiVersion: bakery.dev/v1\nkind: Node\nmetadata:\n  name: n\nspec: {address: on}\n",
			[]wantErr{
				{Index: 1, Kind: "Node", Field: "metadata.name", Reason: "must be a string, not a boolean (false); quote the value in YAML"},
				{Index: 1, Kind: "Node", Field: "spec.address", Reason: "must be a string, not a boolean (true); quote the value in YAML"},
			},
		},
		{
			"duplicate keys in YAML",
			nodeYAML + "  address: 10.0.0.2\n---\n" + nodeYAML + "kind: Node\n",
			[]wantErr{
				{Index: 1, Reason: `line 7: key "address" already set in map`},
				{Index: 2, Reason: `line 15: key "kind" already set in map`},
			},
		},
		{
			"duplicate keys in JSON",
			`[{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"a","name":"b"},"spec":{"address":"x"}},
			  {"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"c"},"spec":{"address":"x","port":1,"port":2}}]`,
			[]wantErr{
				{Index: 1, Field: "metadata.name", Reason: "duplicate key"},
				{Index: 2, Field: "spec.port", Reason: "duplicate key"},
			},
		},
		{
			"wrong types",
			"apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {version: 1}\n  creationTimestamp: yesterday\n" +
				"spec:\n  source: {repo: r}\n  nodes: web-1\n  suspend: \"yes\"\n  keepReleases: 2.5\n  run:\n    command: [a]\n    port: \"8080\"\n" +
				"    env:\n    - {name: A, value: yes}\n    - {name: 5, value: x}\n  healthCheck:\n    timeout: 5\n    interval: soon\n    retries: 99999999999999999999\n  ingress: [h]\n",
			[]wantErr{
				{Index: 1, Kind: "Deployment", Name: "web", Field: "metadata.creationTimestamp", Reason: "must be an RFC 3339 time"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "metadata.labels.version", Reason: "must be a string, not a number (1); quote the value in YAML"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.healthCheck.interval", Reason: `must be a duration such as "30s" or "2m": "soon"`},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.healthCheck.retries", Reason: "integer 100000000000000000000 is out of range"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.healthCheck.timeout", Reason: "must be a duration"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.ingress", Reason: "must be a mapping, not a list"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.keepReleases", Reason: "must be an integer, not 2.5"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.nodes", Reason: "must be a list, not a string"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.run.command", Reason: "must be a string, not a list"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.run.env[0].value", Reason: "must be a string, not a boolean (true); quote the value in YAML"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.run.env[1].name", Reason: "must be a string, not a number (5)"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.run.port", Reason: "must be an integer, not a string"},
				{Index: 1, Kind: "Deployment", Name: "web", Field: "spec.suspend", Reason: "must be true or false, not a string"},
			},
		},
		{
			"apiVersion and kind",
			"kind: Node\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\n---\n" +
				"apiVersion: bakery.dev/v1\nkind: Pod\nmetadata: {name: c}\n---\napiVersion: bakery.dev/v1\nmetadata: {name: d}\n---\napiVersion: 1\nkind: [Node]\n",
			[]wantErr{
				{Index: 1, Kind: "Node", Name: "a", Field: "apiVersion", Reason: `is required: "bakery.dev/v1"`},
				{Index: 2, Kind: "Deployment", Name: "b", Field: "apiVersion", Reason: `must be "bakery.dev/v1", not "apps/v1"`},
				{Index: 3, Name: "c", Field: "kind", Reason: `unknown kind "Pod" (known kinds: Deployment, ManifestSource, Node, Secret)`},
				{Index: 4, Name: "d", Field: "kind", Reason: "is required: one of Deployment, ManifestSource, Node, Secret"},
				{Index: 5, Field: "apiVersion", Reason: `must be "bakery.dev/v1", not a number (1)`},
				{Index: 5, Field: "kind", Reason: "must be one of Deployment, ManifestSource, Node, Secret, not a list"},
			},
		},
		{
			"documents that are not mappings",
			"- a\n- b\n---\njust text\n---\n~\n---\n" + nodeYAML,
			[]wantErr{
				{Index: 1, Reason: "must be a mapping with apiVersion, kind, metadata and spec, not a list"},
				{Index: 2, Reason: "not a string"},
				{Index: 3, Reason: "not null"},
			},
		},
		{
			"duplicate objects",
			nodeYAML + "---\n" + webYAML + "---\n" + strings.Replace(nodeYAML, "10.0.0.1", "10.0.0.2", 1) + "---\n" + webYAML,
			[]wantErr{
				{Index: 3, Kind: "Node", Name: "web-1", Field: "metadata.name", Reason: "Node/web-1 is defined twice: also in document 1"},
				{Index: 4, Kind: "Deployment", Name: "web", Field: "metadata.name", Reason: "Deployment/web is defined twice: also in document 2"},
			},
		},
		{
			"duplicate objects in a YAML List",
			"apiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(nodeYAML, "\n", "\n  ") + "\n- " + strings.ReplaceAll(nodeYAML, "\n", "\n  ") + "\n",
			[]wantErr{{Index: 1, Kind: "Node", Name: "web-1", Field: "items[1].metadata.name", Reason: "also in document 1 items[0]"}},
		},
		{"NUL byte", nodeYAML + "  user: a\x00b\n", []wantErr{{Reason: "contains a NUL byte at line 7, column 10"}}},
		{"invalid UTF-8", nodeYAML + "  user: \xff\n", []wantErr{{Reason: "invalid UTF-8 at line 7, column 9"}}},
		{"JSON with trailing garbage", `{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"a"},"spec":{}}` + "\n  xyz",
			[]wantErr{{Reason: "invalid JSON at line 2, column 3: unexpected data after the top-level value"}}},
		{"two JSON values", `{"kind":"Node"} {"kind":"Node"}`, []wantErr{{Reason: "line 1, column 17: unexpected data after the top-level value"}}},
		{"JSON syntax error", "{\"kind\": \"Node\",\n \"metadata\" {}}", []wantErr{{Reason: "invalid JSON at line 2, column 13"}}},
		{"YAML flow mapping is read as JSON", "{apiVersion: bakery.dev/v1}", []wantErr{{Reason: "invalid JSON at line 1, column 2: invalid character 'a' (input starting with { or [ is read as JSON)"}}},
		{"truncated JSON", `[{"kind": "Node"`, []wantErr{{Reason: "unexpected end of input"}}},
		{"JSON nested too deep", strings.Repeat("[", 200) + strings.Repeat("]", 200), []wantErr{{Reason: "nested more than 100 levels deep"}}},
		{
			"JSON array items that are not objects, and a bad item",
			`[1, {"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"a"},"spec":{"adress":"x"}}]`,
			[]wantErr{
				{Index: 1, Reason: "not a number (1)"},
				{Index: 2, Kind: "Node", Name: "a", Field: "spec.adress", Reason: `unknown field (did you mean "address"?)`},
			},
		},
		{
			"JSON List wrapper",
			`{"apiVersion":"apps/v1","kind":"List","itemz":[],"items":{}}`,
			[]wantErr{
				{Kind: "List", Field: "apiVersion", Reason: `must be "v1" or "bakery.dev/v1" for a List, not "apps/v1"`},
				{Kind: "List", Field: "items", Reason: "must be a list of objects, not a mapping"},
				{Kind: "List", Field: "itemz", Reason: `unknown field (did you mean "items"?)`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := manifests.Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded with %d objects, want errors", len(objs))
			}
			if objs != nil {
				t.Errorf("Decode returned %d objects with errors, want none", len(objs))
			}
			if diff := cmp.Diff(tt.want, simplify(t, err, tt.want)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nmessage:\n%v", diff, err)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		e    manifests.Error
		want string
	}{
		{manifests.Error{Source: "app.yaml", Index: 2, Kind: "Deployment", Name: "web", Field: "spec.run.port", Reason: "must be 1-65534"},
			"app.yaml: document 2 (Deployment/web): spec.run.port: must be 1-65534"},
		{manifests.Error{Index: 1, Reason: "invalid YAML: line 3: oops"}, "document 1: invalid YAML: line 3: oops"},
		{manifests.Error{Source: "-", Reason: "too large"}, "-: too large"},
		{manifests.Error{Kind: "List", Field: "items", Reason: "must be a list"}, "List: items: must be a list"},
		{manifests.Error{Index: 3, Name: "x", Field: "kind", Reason: "is required"}, "document 3 (?/x): kind: is required"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	es := manifests.Errors{&tests[0].e, &tests[1].e}
	if got, want := es.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

func TestDecodeSource(t *testing.T) {
	_, err := manifests.DecodeSource("app.yaml", []byte(nodeYAML+"---\n"+strings.Replace(webYAML, "name: web", "name: Web", 1)+"  bogus: 1\n"))
	want := `app.yaml: document 2 (Deployment/Web): spec.bogus: unknown field`
	if err == nil || err.Error() != want {
		t.Errorf("DecodeSource error = %v, want %s", err, want)
	}
}

func TestDecodeTooLarge(t *testing.T) {
	big := bytes.Repeat([]byte("# padding\n"), 1<<20) // 10 MiB
	_, err := manifests.DecodeSource("big.yaml", big)
	if !errors.Is(err, manifests.ErrTooLarge) {
		t.Fatalf("Decode of %d bytes: %v, want ErrTooLarge", len(big), err)
	}
	if want := "big.yaml: manifest too large: input is larger than the limit of 4 MiB"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestDecodeManyErrorsCapped(t *testing.T) {
	in := strings.Repeat("a: 1\n---\n", 400000)
	_, err := manifests.Decode([]byte(in))
	var es manifests.Errors
	if !errors.As(err, &es) {
		t.Fatalf("Decode: %v", err)
	}
	if len(es) != 101 || es[100].Reason != "too many problems: stopped after the first 100" {
		t.Errorf("got %d errors, last %v; want 100 and a summary", len(es), es[len(es)-1])
	}
}

func TestCheck(t *testing.T) {
	good := deployment("web")
	badNode := node("Bad_Name", "")
	badDeploy := deployment("api")
	badDeploy.Spec.Run.Port = intp(65535)
	badDeploy.Spec.Run.Env = []api.EnvVar{{Name: "OK", Value: "1"}, {Name: "OK", Value: "2"}, {Name: "1X"}}

	if err := manifests.Check([]api.Object{good, node("web-1", "10.0.0.1")}); err != nil {
		t.Fatalf("Check of valid objects: %v", err)
	}
	if good.Spec.HealthCheck.Path != api.DefaultHealthPath {
		t.Errorf("Check did not default: healthCheck.path = %q", good.Spec.HealthCheck.Path)
	}

	err := manifests.Check([]api.Object{good, badNode, badDeploy})
	want := []wantErr{
		{Index: 2, Kind: "Node", Name: "Bad_Name", Field: "metadata.name", Reason: "must be a DNS-1123 label"},
		{Index: 2, Kind: "Node", Name: "Bad_Name", Field: "spec.address", Reason: "is required"},
		{Index: 3, Kind: "Deployment", Name: "api", Field: "spec.run.port", Reason: "must be 1-65534"},
		{Index: 3, Kind: "Deployment", Name: "api", Field: "spec.run.env[1].name", Reason: `duplicate variable "OK"`},
		{Index: 3, Kind: "Deployment", Name: "api", Field: "spec.run.env[2].name", Reason: "not a valid environment variable name"},
	}
	if diff := cmp.Diff(want, simplify(t, err, want)); diff != "" {
		t.Errorf("Check errors (-want +got):\n%s\nmessage:\n%v", diff, err)
	}
}

// defaulted returns a Node and a Deployment using every kind of field,
// defaulted as Check leaves them.
func defaulted() []api.Object {
	n := node("web-1", "10.0.0.1")
	n.Metadata.Labels = map[string]string{"role": "web", "zone": "yes"}
	n.Metadata.Annotations = map[string]string{"bakery.dev/note": "first\nsecond"}
	n.Spec.HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE"
	n.Metadata.UID = "u-1"
	n.Metadata.Generation = 1 << 40
	n.Metadata.ResourceVersion = "0012"
	n.Metadata.CreationTimestamp = api.NewTime(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	local := node("local", "")
	local.Spec.Local = true
	d := deployment("web")
	d.Spec.NodeSelector = map[string]string{"role": "web"}
	d.Spec.Build = api.Build{Install: "npm ci", Test: "node --test", Build: "true"}
	d.Spec.Run.Port = intp(9000)
	d.Spec.Run.Env = []api.EnvVar{{Name: "A", Value: "123"}, {Name: "B", Value: "null"}, {Name: "C", Value: ""}, {Name: "D", Value: "  'x': \"y\" # z"}}
	d.Spec.HealthCheck.Timeout = dur(1500 * time.Millisecond)
	d.Spec.Ingress = &api.Ingress{Hosts: []string{"a.example.test"}, TLS: &api.TLS{Email: "ops@example.test"}}
	docker := deployment("img")
	docker.Spec.Runtime = api.RuntimeDocker
	docker.Spec.Docker = &api.DockerSpec{BuildArgs: map[string]string{"V": "1"}}
	docker.Spec.Source.Commit = strings.Repeat("ab", 20)
	objs := []api.Object{n, local, d, docker}
	if err := manifests.Check(objs); err != nil {
		panic(err)
	}
	return objs
}

func TestRoundTrip(t *testing.T) {
	objs := defaulted()
	y, err := manifests.Encode(objs...)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(y, []byte("\n---\n")); got != len(objs)-1 {
		t.Errorf("Encode wrote %d separators for %d objects:\n%s", got, len(objs), y)
	}
	if bytes.Contains(y, []byte("status:")) || !bytes.HasPrefix(y, []byte("apiVersion: bakery.dev/v1\n")) {
		t.Errorf("Encode output:\n%s", y)
	}
	j, err := manifests.EncodeJSON(objs...)
	if err != nil {
		t.Fatal(err)
	}
	j1, err := manifests.EncodeJSON(objs[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"yaml": y, "json": j} {
		got, err := manifests.Decode(data)
		if err != nil {
			t.Fatalf("Decode(%s): %v\n%s", name, err, data)
		}
		if diff := cmp.Diff(objs, got); diff != "" {
			t.Errorf("Decode(Encode %s) (-want +got):\n%s", name, diff)
		}
		if err := manifests.Check(got); err != nil {
			t.Errorf("Check after %s round trip: %v", name, err)
		}
	}
	got, err := manifests.Decode(j1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(objs[:1], got); diff != "" {
		t.Errorf("Decode(EncodeJSON(one)) (-want +got):\n%s", diff)
	}
}

func TestEncodeJSONShape(t *testing.T) {
	for _, tt := range []struct {
		objs      []api.Object
		wantKind  string
		wantItems int
	}{
		{nil, "List", 0},
		{[]api.Object{node("a", "x")}, "Node", -1},
		{[]api.Object{node("a", "x"), node("b", "y")}, "List", 2},
	} {
		b, err := manifests.EncodeJSON(tt.objs...)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Items      []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		if v.Kind != tt.wantKind || tt.wantItems >= 0 && (len(v.Items) != tt.wantItems || v.APIVersion != "v1" || v.Items == nil) {
			t.Errorf("EncodeJSON(%d objects) =\n%s", len(tt.objs), b)
		}
	}
}

func TestEncodeStatus(t *testing.T) {
	d := defaulted()[2].(*api.Deployment)
	d.Status.ObservedGeneration = 2
	d.Status.Conditions = []api.Condition{{Type: api.ConditionReady, Status: api.ConditionTrue, LastTransitionTime: api.NewTime(time.Unix(1e9, 0))}}
	y, err := manifests.Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(y, []byte("\nstatus:\n")) {
		t.Errorf("Encode left out a non-empty status:\n%s", y)
	}
	got, err := manifests.Decode(y)
	if err != nil {
		t.Fatalf("Decode of get -o yaml output: %v\n%s", err, y)
	}
	want := d.DeepCopyObject().(*api.Deployment)
	want.Status = api.DeploymentStatus{}
	if diff := cmp.Diff([]api.Object{want}, got); diff != "" {
		t.Errorf("Decode kept status (-want +got):\n%s", diff)
	}
	if _, err := manifests.Encode(nil); err == nil {
		t.Error("Encode(nil object) succeeded")
	}
}

// TestDecodeYAML11BoolKeys: a key YAML 1.1 reads as a boolean (on, yes,
// n…) keeps its text — `build: {on: each}` is the field "on" in flow and
// block style — while values such as `suspend: yes` stay booleans, and an
// error after the patched line still names the right line.
func TestDecodeYAML11BoolKeys(t *testing.T) {
	const doc = `apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: a, labels: {on: "1", "off": "2"}}
spec:
  source: {repo: /r}
  nodes: [n1]
  build: {on: each, test: "true"}
  suspend: yes
  run: {command: x}
`
	objs, err := manifests.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	d := objs[0].(*api.Deployment)
	if d.Spec.Build.On != "each" || d.Spec.Build.Test != "true" || !d.Spec.Suspend {
		t.Errorf("build %+v, suspend %v", d.Spec.Build, d.Spec.Suspend)
	}
	if d.Metadata.Labels["on"] != "1" || d.Metadata.Labels["off"] != "2" {
		t.Errorf("labels %v", d.Metadata.Labels)
	}
	block := strings.Replace(doc, "  build: {on: each, test: \"true\"}\n", "  build:\n    on: one\n", 1)
	if objs, err = manifests.Decode([]byte(block)); err != nil || objs[0].(*api.Deployment).Spec.Build.On != "one" {
		t.Fatalf("block style: %v, %+v", err, objs)
	}
	_, err = manifests.Decode([]byte(block + "  bogus: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.bogus") {
		t.Fatalf("an unknown field after a patched key: %v", err)
	}
	if _, err = manifests.Decode([]byte(strings.Replace(block, "on: one", "yes: one", 1))); err == nil || !strings.Contains(err.Error(), "spec.build.yes") {
		t.Fatalf("an unknown bool-like key is named as written: %v", err)
	}
}
