package manifestsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/manifests"
	"bakery.dev/bakery/reconciler/internal/testenv"
)

func dep(name, cmd string) string {
	return fmt.Sprintf(`apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: %s}
spec:
  source: {repo: /srv/app.git}
  nodes: [n1]
  run: {command: %s}
`, name, cmd)
}

func decode(t *testing.T, docs ...string) []api.Object {
	t.Helper()
	objs, err := manifests.Decode([]byte(strings.Join(docs, "---\n")))
	if err == nil {
		err = manifests.Check(objs)
	}
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func annotations(t *testing.T, st store.Store, kind, name string) map[string]string {
	t.Helper()
	o, err := st.Get(t.Context(), kind, name)
	if err != nil {
		t.Fatal(err)
	}
	return o.GetObjectMeta().Annotations
}

func TestSyncCreatesChangesPrunes(t *testing.T) {
	ctx := t.Context()
	st := testenv.FileStore(t)
	// Hand-made, never pruned.
	if _, err := st.Create(ctx, decode(t, dep("manual", "run"))[0]); err != nil {
		t.Fatal(err)
	}
	opts := Options{Owner: "ManifestSource/a", Prune: true}
	res, err := Sync(ctx, st, decode(t, dep("web", "v1"), dep("api", "v1")), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Created: []string{"Deployment/api", "Deployment/web"}, Inventory: []string{"Deployment/api", "Deployment/web"}}
	if d := cmp.Diff(want, res); d != "" {
		t.Fatalf("first sync (-want +got):\n%s", d)
	}
	if a := annotations(t, st, api.KindDeployment, "web"); a[api.AnnotationOwner] != "ManifestSource/a" {
		t.Fatalf("owner annotation: %v", a)
	}
	// Dry run: reported, not done.
	dry := opts
	dry.DryRun = true
	res, err = Sync(ctx, st, decode(t, dep("web", "v2")), dry)
	if err != nil {
		t.Fatal(err)
	}
	want = Result{Changed: []string{"Deployment/web"}, Pruned: []string{"Deployment/api"}, Inventory: []string{"Deployment/web"}}
	if d := cmp.Diff(want, res); d != "" {
		t.Fatalf("dry run (-want +got):\n%s", d)
	}
	if _, err := st.Get(ctx, api.KindDeployment, "api"); err != nil {
		t.Fatalf("a dry run pruned: %v", err)
	}
	// For real.
	res, err = Sync(ctx, st, decode(t, dep("web", "v2")), opts)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, res); d != "" {
		t.Fatalf("second sync (-want +got):\n%s", d)
	}
	if _, err := st.Get(ctx, api.KindDeployment, "api"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("api not pruned: %v", err)
	}
	if _, err := st.Get(ctx, api.KindDeployment, "manual"); err != nil {
		t.Fatalf("a hand-made deployment was pruned: %v", err)
	}
	// Unchanged.
	res, err = Sync(ctx, st, decode(t, dep("web", "v2")), opts)
	if err != nil || !res.Empty() || res.Unchanged != 1 {
		t.Fatalf("third sync: %+v, %v", res, err)
	}
	// Another owner's objects are neither pruned nor taken over.
	other := Options{Owner: "ManifestSource/b", Prune: true}
	if _, err := Sync(ctx, st, nil, other); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, api.KindDeployment, "web"); err != nil {
		t.Fatalf("another owner pruned web: %v", err)
	}
	rv := annotations(t, st, api.KindDeployment, "web")
	if _, err := Sync(ctx, st, decode(t, dep("web", "v3"), dep("new", "x")), other); !errors.Is(err, ErrOwnedByOther) {
		t.Fatalf("taking over another owner's object: %v", err)
	}
	if _, err := st.Get(ctx, api.KindDeployment, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a failed sync applied part of its bundle")
	}
	if d := cmp.Diff(rv, annotations(t, st, api.KindDeployment, "web")); d != "" {
		t.Fatal(d)
	}
}

func TestSyncPrunesDeploymentsViaLoop(t *testing.T) {
	ctx := t.Context()
	st := testenv.FileStore(t)
	opts := Options{Owner: "Directory:/x", Prune: true, DeleteViaLoop: true}
	if _, err := Sync(ctx, st, decode(t, dep("web", "v1")), opts); err != nil {
		t.Fatal(err)
	}
	res, err := Sync(ctx, st, nil, opts)
	if err != nil || len(res.Pruned) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if a := annotations(t, st, api.KindDeployment, "web"); a[api.AnnotationDeletionRequested] == "" {
		t.Fatalf("web not marked for deletion: %v", a)
	}
	// Already being deleted: not pruned twice.
	res, err = Sync(ctx, st, nil, opts)
	if err != nil || !res.Empty() {
		t.Fatalf("%+v %v", res, err)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runCmd(st store.Store, name string) string {
	o, err := st.Get(context.Background(), api.KindDeployment, name)
	if err != nil {
		return ""
	}
	return o.(*api.Deployment).Spec.Run.Command
}

func TestWatcher(t *testing.T) {
	st := testenv.FileStore(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "web.yaml"), dep("web", "v1"))
	syncs := make(chan error, 100)
	w := &Watcher{Dir: dir, Store: st, Debounce: 100 * time.Millisecond, Synced: func(_ Result, err error) { syncs <- err }}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, "web applied at start", func() bool { return runCmd(st, "web") == "v1" })

	// Write a new file.
	write(t, filepath.Join(dir, "api.yaml"), dep("api", "v1"))
	testenv.Eventually(t, "api created", func() bool { return runCmd(st, "api") == "v1" })

	// Rename over (editor save): temp file, then rename.
	write(t, filepath.Join(dir, ".web.yaml.swp"), "garbage: [")
	write(t, filepath.Join(dir, "web.yaml~"), "garbage: [")
	write(t, filepath.Join(dir, ".web.yaml.tmp"), dep("web", "v2"))
	if err := os.Rename(filepath.Join(dir, ".web.yaml.tmp"), filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "web changed by rename-over", func() bool { return runCmd(st, "web") == "v2" })

	// A half-written file: nothing of it (nor anything else) is applied.
	full := dep("half", "v1")
	for len(syncs) > 0 {
		<-syncs
	}
	write(t, filepath.Join(dir, "half.yaml"), full[:len(full)-20])
	var err error
	testenv.Eventually(t, "the half-written file was tried", func() bool {
		select {
		case err = <-syncs:
			return true
		default:
			return false
		}
	})
	if err == nil {
		t.Fatal("a half-written manifest was applied")
	}
	if runCmd(st, "half") != "" {
		t.Fatal("half-written deployment exists")
	}
	if w.Status().Err == nil {
		t.Fatal("status does not report the error")
	}
	write(t, filepath.Join(dir, "half.yaml"), full)
	testenv.Eventually(t, "completed file applied", func() bool { return runCmd(st, "half") == "v1" })

	// In a new subdirectory.
	if err := os.Mkdir(filepath.Join(dir, "more"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "more", "sub.yaml"), dep("sub", "v1"))
	testenv.Eventually(t, "sub created", func() bool { return runCmd(st, "sub") == "v1" })

	// Delete → pruned.
	if err := os.Remove(filepath.Join(dir, "api.yaml")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "api pruned", func() bool { return runCmd(st, "api") == "" })
	if runCmd(st, "web") != "v2" {
		t.Fatal("web lost")
	}
}

// TestSyncObeysStoreRules: the store enforces the rules spanning several
// objects for a sync too, dry run or not, without anything passed in.
func TestSyncObeysStoreRules(t *testing.T) {
	ctx := t.Context()
	st := testenv.FileStore(t)
	withHost := func(name string) string { return dep(name, "x") + "  ingress: {hosts: [taken.example.test]}\n" }
	if _, err := st.Create(ctx, decode(t, withHost("hand"))[0]); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		_, err := Sync(ctx, st, decode(t, dep("other", "x"), withHost("web")), Options{Owner: "test", DryRun: dry})
		var re *store.RuleError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "claimed by Deployment/hand") {
			t.Fatalf("dry run %v: err = %v, want a *store.RuleError naming Deployment/hand", dry, err)
		}
	}
	if l, _ := st.List(ctx, api.KindDeployment, store.ListOptions{}); len(l) != 1 {
		t.Fatalf("a refused sync stored objects: %d deployments", len(l))
	}
}

// TestSyncPolicy: the zero Options refuse local Nodes (the server allows
// them only with --allow-local-nodes); Policy.Kinds limits the kinds; a
// refused bundle applies nothing.
func TestSyncPolicy(t *testing.T) {
	st := testenv.FileStore(t)
	local := "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: self}\nspec: {local: true}\n"
	objs := decode(t, dep("web", "x"), local)
	_, err := Sync(t.Context(), st, objs, Options{Owner: "o"})
	var merrs manifests.Errors
	if !errors.As(err, &merrs) || len(merrs) != 1 || merrs[0].Field != "spec.local" || merrs[0].Index != 2 {
		t.Fatalf("local node: %v", err)
	}
	if _, err := st.Get(t.Context(), api.KindDeployment, "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused bundle applied something: %v", err)
	}
	_, err = Sync(t.Context(), st, objs, Options{Owner: "o", Policy: manifests.Policy{LocalNodes: true, Kinds: []string{api.KindDeployment}}})
	if !errors.As(err, &merrs) || len(merrs) != 1 || merrs[0].Field != "kind" || !strings.Contains(merrs[0].Reason, "only Deployment, not Node") {
		t.Fatalf("kinds: %v", err)
	}
	if _, err := Sync(t.Context(), st, objs, Options{Owner: "o", Policy: manifests.Policy{LocalNodes: true}}); err != nil {
		t.Fatal(err)
	}
}
