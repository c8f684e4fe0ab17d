package manifestsource

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/source"
)

// manifestRepo is a git repository of manifests on the control plane.
type manifestRepo struct {
	t   *testing.T
	dir string
}

func newManifestRepo(t *testing.T) *manifestRepo {
	r := &manifestRepo{t: t, dir: filepath.Join(t.TempDir(), "manifests")}
	if err := os.MkdirAll(filepath.Join(r.dir, "deploy"), 0o755); err != nil || os.MkdirAll(filepath.Join(r.dir, "other"), 0o755) != nil {
		t.Fatal(err)
	}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *manifestRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.test", "-C", r.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (content "" removes the file) and commits.
func (r *manifestRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if content == "" {
			os.Remove(p)
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

func manifestDeployment(name, repo, greeting string) string {
	return fmt.Sprintf(`apiVersion: bakery.dev/v1
kind: Deployment
metadata:
  name: %s
spec:
  source: {repo: %q, ref: main}
  nodes: [n1]
  run:
    command: node server.js
    env: [{name: GREETING, value: %q}]
`, name, repo, greeting)
}

func manifestSource(name, repo string) *api.ManifestSource {
	ms := &api.ManifestSource{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindManifestSource},
		Metadata: api.ObjectMeta{Name: name}, Spec: api.ManifestSourceSpec{Repo: repo, Path: "deploy"}}
	ms.Default()
	return ms
}

func getSource(t *testing.T, st store.Store, name string) *api.ManifestSource {
	t.Helper()
	o, err := st.Get(t.Context(), api.KindManifestSource, name)
	if err != nil {
		t.Fatal(err)
	}
	return o.(*api.ManifestSource)
}

func TestManifestSourceReconcile(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"file": func(t *testing.T) store.Store { return testenv.FileStore(t) },
		"postgres": func(t *testing.T) store.Store {
			s, err := pgstore.Open(t.Context(), pgtest.DatabaseURL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) { testManifestSourceReconcile(t, open(t)) })
	}
}

func testManifestSourceReconcile(t *testing.T, st store.Store) {
	ctx := t.Context()
	repo := newManifestRepo(t)
	r := &Reconciler{Store: st, Mirrors: &source.Mirrors{Dir: t.TempDir()}}
	sync := func() *api.ManifestSource {
		t.Helper()
		if _, err := r.Reconcile(ctx, reconciler.Request{Kind: api.KindManifestSource, Name: "apps"}); err != nil {
			t.Fatal(err)
		}
		return getSource(t, st, "apps")
	}
	exists := func(name string) bool {
		_, err := st.Get(ctx, api.KindDeployment, name)
		return err == nil
	}
	// A deployment created by hand, never pruned.
	manual := helloDeploymentFor("manual", "/srv/other")
	if _, err := st.Create(ctx, manual); err != nil {
		t.Fatal(err)
	}
	c1 := repo.commit("web", map[string]string{
		"deploy/web.yaml":  manifestDeployment("web", "/srv/web", "hi"),
		"deploy/README.md": "not a manifest",
		"other/x.yaml":     "not: [read",
	})
	if _, err := st.Create(ctx, manifestSource("apps", repo.dir)); err != nil {
		t.Fatal(err)
	}
	ms := sync()
	if ms.Status.LastSyncedCommit != c1 || ms.Status.LastError != "" || strings.Join(ms.Status.Created, ",") != "Deployment/web" {
		t.Fatalf("first sync: %+v", ms.Status)
	}
	if o, _ := st.Get(ctx, api.KindDeployment, "web"); o.GetObjectMeta().Annotations[api.AnnotationOwner] != "ManifestSource/apps" {
		t.Fatalf("owner: %v", o.GetObjectMeta().Annotations)
	}

	// An invalid manifest: nothing of the commit applied, error on status.
	c2 := repo.commit("broken", map[string]string{
		"deploy/api.yaml": manifestDeployment("api", "/srv/api", "x"),
		"deploy/bad.yaml": strings.Replace(manifestDeployment("bad", "/srv/bad", "x"), "nodes: [n1]", "nodez: [n1]", 1),
	})
	ms = sync()
	if ms.Status.LastSyncedCommit != c1 || ms.Status.LastAttemptedCommit != c2 || !strings.Contains(ms.Status.LastError, "nodez") ||
		!strings.Contains(ms.Status.LastError, "deploy/bad.yaml") || api.IsTrue(ms.Status.Conditions, api.ConditionReady) {
		t.Fatalf("invalid commit: %+v", ms.Status)
	}
	if exists("api") {
		t.Fatal("a valid manifest of an invalid commit was applied")
	}

	// Fixed, web changed, api added: dry run first.
	c3 := repo.commit("fixed", map[string]string{
		"deploy/bad.yaml": "",
		"deploy/web.yaml": manifestDeployment("web", "/srv/web", "hello"),
	})
	ms.Spec.DryRun = true
	if _, err := st.Update(ctx, ms); err != nil {
		t.Fatal(err)
	}
	ms = sync()
	if !ms.Status.DryRun || strings.Join(ms.Status.Created, ",") != "Deployment/api" || strings.Join(ms.Status.Changed, ",") != "Deployment/web" || exists("api") {
		t.Fatalf("dry run: %+v", ms.Status)
	}
	ms.Spec.DryRun = false
	if _, err := st.Update(ctx, ms); err != nil {
		t.Fatal(err)
	}
	ms = sync()
	if ms.Status.LastSyncedCommit != c3 || ms.Status.DryRun || !exists("api") || ms.Status.LastError != "" {
		t.Fatalf("after fix: %+v", ms.Status)
	}

	// Removed from the repository: pruned (deleted at once without a loop).
	repo.commit("remove web", map[string]string{"deploy/web.yaml": ""})
	ms = sync()
	if strings.Join(ms.Status.Pruned, ",") != "Deployment/web" || exists("web") || !exists("api") || !exists("manual") {
		t.Fatalf("prune: %+v", ms.Status)
	}
	// Everything removed: the hand-made deployment stays.
	repo.commit("remove all", map[string]string{"deploy/api.yaml": "", "deploy/.keep": "x"})
	ms = sync()
	if exists("api") || !exists("manual") || ms.Status.LastError != "" {
		t.Fatalf("remove all: %+v", ms.Status)
	}
}

func helloDeploymentFor(name, repo string) *api.Deployment {
	d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment}, Metadata: api.ObjectMeta{Name: name},
		Spec: api.DeploymentSpec{Source: api.Source{Repo: repo}, Nodes: []string{"n1"}, Run: api.Run{Command: "x"}}}
	d.Default()
	return d
}
