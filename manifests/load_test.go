package manifests_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/manifests"
	"github.com/google/go-cmp/cmp"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func nodeDoc(name string) string {
	return "apiVersion: bakery.dev/v1\nkind: Node\nmetadata:\n  name: " + name + "\nspec:\n  address: 10.0.0.1\n"
}

func names(objs []api.Object) []string {
	var ns []string
	for _, o := range objs {
		ns = append(ns, api.Ref(o))
	}
	return ns
}

func TestLoadDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"00-nodes.json":    `{"apiVersion":"bakery.dev/v1","kind":"Node","metadata":{"name":"a"},"spec":{"address":"x"}}`,
		"UPPER.YAML":       nodeDoc("c"),
		"apps.yaml":        nodeDoc("b") + "---\n# nothing\n",
		"apps/api.yml":     strings.Replace(webYAML, "name: web", "name: api", 1),
		"apps/web.yaml":    webYAML,
		"apps/deep/z.yaml": nodeDoc("z"),
		"apps/empty.yaml":  "",
		".hidden/x.yaml":   "not: [valid",
		"apps/.draft.yaml": "not: [valid",
		".git/config.yml":  "not: [valid",
		"README.md":        "# not a manifest: [",
		"apps/notes.txt":   "not: [valid",
	})
	objs, err := manifests.Load(dir, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{"Node/a", "Node/c", "Node/b", "Deployment/api", "Node/z", "Deployment/web"}
	if diff := cmp.Diff(want, names(objs)); diff != "" {
		t.Errorf("Load order (-want +got):\n%s", diff)
	}
}

func TestLoadDirErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml":     nodeDoc("x"),
		"sub/b.yaml": nodeDoc("ok") + "---\n" + nodeDoc("x") + "---\n" + nodeDoc("node-y") + "  prot: 22\n",
		"sub/c.json": `{"apiVersion":"bakery.dev/v1"} trailing`,
	})
	objs, err := manifests.Load(dir, nil)
	if objs != nil {
		t.Errorf("Load returned %d objects with errors", len(objs))
	}
	b, c := filepath.Join(dir, "sub", "b.yaml"), filepath.Join(dir, "sub", "c.json")
	want := []wantErr{
		{Source: b, Index: 2, Kind: "Node", Name: "x", Field: "metadata.name", Reason: "Node/x is defined twice: also in " + filepath.Join(dir, "a.yaml") + " document 1"},
		{Source: b, Index: 3, Kind: "Node", Name: "node-y", Field: "spec.prot", Reason: `unknown field (did you mean "port"?)`},
		{Source: c, Reason: "unexpected data after the top-level value"},
	}
	if diff := cmp.Diff(want, simplify(t, err, want)); diff != "" {
		t.Errorf("Load errors (-want +got):\n%s\nmessage:\n%v", diff, err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"bundle.txt": nodeDoc("a") + "---\n" + nodeDoc("b")})
	objs, err := manifests.Load(filepath.Join(dir, "bundle.txt"), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if diff := cmp.Diff([]string{"Node/a", "Node/b"}, names(objs)); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, err = manifests.Load(missing, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if want := missing + ": stat: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("Load(missing) = %v, want %s", err, want)
	}
}

func TestLoadTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(10 << 20); err != nil { // sparse: nothing is written
		t.Fatal(err)
	}
	f.Close()
	for _, path := range []string{big, dir} {
		_, err := manifests.Load(path, nil)
		if !errors.Is(err, manifests.ErrTooLarge) || !strings.HasPrefix(err.Error(), big+": ") {
			t.Errorf("Load(%s) = %v, want ErrTooLarge for %s", path, err, big)
		}
	}
}

// countingReader yields endless comment lines and counts what was read.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "#\n"[i%2]
	}
	r.n += int64(len(p))
	return len(p), nil
}

func TestLoadStdin(t *testing.T) {
	objs, err := manifests.Load("-", strings.NewReader(nodeDoc("a")))
	if err != nil {
		t.Fatalf("Load(-): %v", err)
	}
	if diff := cmp.Diff([]string{"Node/a"}, names(objs)); diff != "" {
		t.Errorf("Load(-) (-want +got):\n%s", diff)
	}

	_, err = manifests.Load("-", strings.NewReader(nodeDoc("a")+"  bad: 1\n"))
	if want := "-: document 1 (Node/a): spec.bad: unknown field"; err == nil || err.Error() != want {
		t.Errorf("Load(-) = %v, want %s", err, want)
	}

	r := &countingReader{}
	_, err = manifests.Load("-", io.LimitReader(r, 100<<20))
	if !errors.Is(err, manifests.ErrTooLarge) {
		t.Errorf("Load(- with 100 MiB) = %v, want ErrTooLarge", err)
	}
	if r.n > 2*manifests.MaxBytes {
		t.Errorf("Load read %d bytes of stdin to refuse it, want about MaxBytes", r.n)
	}
}

func TestHelloExample(t *testing.T) {
	objs, err := manifests.Load("../examples/hello/app.yaml", nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := manifests.Check(objs); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if diff := cmp.Diff([]string{"Node/web-1", "Deployment/hello"}, names(objs)); diff != "" {
		t.Fatalf("objects (-want +got):\n%s", diff)
	}
	n, d := objs[0].(*api.Node), objs[1].(*api.Deployment)
	if n.Spec.Address != "10.77.0.11" || n.Metadata.Labels["role"] != "web" {
		t.Errorf("node: %+v", n)
	}
	s := d.Spec
	if s.Source.Repo != "/var/lib/bakery-examples/hello.git" || s.Source.Ref != "main" ||
		s.Run.Command != "node server.js" || s.Build.Test != "node --test" || s.HealthCheck.Path != "/healthz" ||
		s.Ingress == nil || len(s.Ingress.Hosts) != 1 || s.Ingress.Hosts[0] != "hello.example.test" ||
		len(s.Nodes) != 1 || s.Nodes[0] != "web-1" || len(s.Run.Env) == 0 {
		t.Errorf("deployment spec: %+v", s)
	}
}
