package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/storetest"
)

const waitFor = 10 * time.Second

// eventually polls cond (bounded) until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// next returns the next event (bounded wait).
func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(waitFor):
		t.Fatal("no event within 10s")
	}
	return store.Event{}
}

func expect(t *testing.T, ev store.Event, typ store.EventType, ref string) {
	t.Helper()
	if ev.Type != typ || api.Ref(ev.Object) != ref {
		t.Fatalf("event %s %s, want %s %s", ev.Type, api.Ref(ev.Object), typ, ref)
	}
}

func watch(t *testing.T, s *Store) <-chan store.Event {
	t.Helper()
	ch, err := s.Watch(t.Context(), store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// sentinel drops a new node file in by hand and waits for its ADDED event:
// hand edits are handled in batches sorted by path, and "zz-…" sorts after
// every other file of the tests, so any event that a file change made
// before the sentinel could cause has been delivered once it arrives.
func sentinel(t *testing.T, s *Store, ch <-chan store.Event) {
	t.Helper()
	name := fmt.Sprintf("zz-sentinel-%d", time.Now().UnixNano())
	writeFile(t, filepath.Join(s.Dir(), "nodes", name+".yaml"), nodeYAML(name, "10.9.9.9", ""))
	expect(t, next(t, ch), store.Added, "Node/"+name)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func nodeYAML(name, addr, extra string) string {
	return fmt.Sprintf("apiVersion: bakery.dev/v1\nkind: Node\nmetadata:\n  name: %s\n%sspec:\n  address: %s\n", name, extra, addr)
}

func deploymentYAML(name, ref string) string {
	return fmt.Sprintf(`# edited by hand
apiVersion: bakery.dev/v1
kind: Deployment
metadata:
  name: %s
spec:
  source:
    repo: /srv/repo
    ref: %s
  nodes: [n1]
  run:
    command: ./server
`, name, ref)
}

func mustCreate(t *testing.T, s store.Store, o api.Object) api.Object {
	t.Helper()
	got, err := s.Create(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func rv(t *testing.T, o api.Object) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(o.GetObjectMeta().ResourceVersion, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	n := storetest.Node("n1", "10.0.0.1", map[string]string{"role": "web"})
	n.Metadata.Annotations = map[string]string{"note": "x"}
	mustCreate(t, s, n)
	d := mustCreate(t, s, storetest.Deployment("web", "/srv/repo")).(*api.Deployment)
	d.Spec.Source.Ref = "release"
	d2, err := s.Update(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	st := d2.(*api.Deployment)
	st.Status.Commit = "abc"
	st.Status.ObservedGeneration = 2
	api.SetCondition(&st.Status.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: "Converged", Message: "2026-01-01T00:00:00Z: yes"})
	if _, err := s.UpdateStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	// The object holding the largest resourceVersion is deleted: the
	// counter must survive it.
	last := mustCreate(t, s, storetest.Node("gone", "10.0.0.2", nil))
	if err := s.Delete(ctx, api.KindNode, "gone", ""); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := s.CreateToken(ctx, store.Token{Name: "admin", Hash: "h1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	nodes, _ := s.List(ctx, api.KindNode, store.ListOptions{})
	deps, _ := s.List(ctx, api.KindDeployment, store.ListOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dir)
	nodes2, _ := s2.List(ctx, api.KindNode, store.ListOptions{})
	deps2, _ := s2.List(ctx, api.KindDeployment, store.ListOptions{})
	if diff := cmp.Diff(nodes, nodes2); diff != "" {
		t.Errorf("nodes after reopen (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(deps, deps2); diff != "" {
		t.Errorf("deployments after reopen (-before +after):\n%s", diff)
	}
	if g := deps2[0].GetObjectMeta().Generation; g != 2 {
		t.Errorf("generation after reopen = %d, want 2", g)
	}
	toks, err := s2.ListTokens(ctx)
	if err != nil || len(toks) != 1 || toks[0].Hash != "h1" || !toks[0].CreatedAt.Equal(now) {
		t.Errorf("tokens after reopen: %+v %v", toks, err)
	}
	again := mustCreate(t, s2, storetest.Node("n2", "10.0.0.3", nil))
	if rv(t, again) <= rv(t, last) {
		t.Errorf("resourceVersion went back after reopen: %d after %d", rv(t, again), rv(t, last))
	}
	if p := s2.Problems(); len(p) != 0 {
		t.Errorf("problems after a clean reopen: %v", p)
	}

	// Permissions.
	for path, want := range map[string]fs.FileMode{
		dir:                                   0o700,
		filepath.Join(dir, "nodes"):           0o700,
		filepath.Join(dir, "nodes", ".state"): 0o700,
		filepath.Join(dir, "tokens.json"):     0o600,
		filepath.Join(dir, "nodes", ".state/n1.json"): 0o600,
		filepath.Join(dir, "nodes", "n1.yaml"):        0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	// The spec file is what a user would write.
	want := "apiVersion: bakery.dev/v1\nkind: Node\nmetadata:\n  annotations:\n    note: x\n  labels:\n    role: web\n  name: n1\nspec:\n  address: 10.0.0.1\n  port: 22\n  user: bakery-agent\n"
	if got := readFile(t, filepath.Join(dir, "nodes", "n1.yaml")); got != want {
		t.Errorf("nodes/n1.yaml:\n%s\nwant:\n%s", got, want)
	}
}

func TestHandEditSpec(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	d := mustCreate(t, s, storetest.Deployment("web", "/srv/repo")).(*api.Deployment)
	d.Status.Commit = "abc"
	v2, err := s.UpdateStatus(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	ch := watch(t, s)
	path := filepath.Join(s.Dir(), "deployments", "web.yaml")

	// The spec changes: new generation, status kept.
	writeFile(t, path, deploymentYAML("web", "release"))
	ev := next(t, ch)
	expect(t, ev, store.Modified, "Deployment/web")
	got := ev.Object.(*api.Deployment)
	if got.Metadata.Generation != 2 || got.Spec.Source.Ref != "release" || got.Status.Commit != "abc" {
		t.Fatalf("after hand edit: generation %d ref %q commit %q", got.Metadata.Generation, got.Spec.Source.Ref, got.Status.Commit)
	}
	if rv(t, got) <= rv(t, v2) || got.Metadata.UID != v2.GetObjectMeta().UID {
		t.Fatalf("after hand edit: rv %s (was %s), uid %s (was %s)", got.Metadata.ResourceVersion, v2.GetObjectMeta().ResourceVersion, got.Metadata.UID, v2.GetObjectMeta().UID)
	}
	if got.Spec.KeepReleases != 3 {
		t.Fatalf("hand-edited spec not defaulted: keepReleases %d", got.Spec.KeepReleases)
	}
	stored, _ := s.Get(ctx, api.KindDeployment, "web")
	if diff := cmp.Diff(ev.Object, stored); diff != "" {
		t.Fatalf("event differs from stored object:\n%s", diff)
	}

	// Comments only: nothing changes, no event.
	writeFile(t, path, "# a comment\n"+deploymentYAML("web", "release"))
	sentinel(t, s, ch)
	if now, _ := s.Get(ctx, api.KindDeployment, "web"); now.GetObjectMeta().ResourceVersion != got.Metadata.ResourceVersion {
		t.Fatal("a comment-only edit changed the object")
	}

	// Labels only: new resourceVersion, same generation.
	writeFile(t, path, strings.Replace(deploymentYAML("web", "release"), "  name: web\n", "  name: web\n  labels: {team: a}\n", 1))
	ev = next(t, ch)
	expect(t, ev, store.Modified, "Deployment/web")
	if m := ev.Object.GetObjectMeta(); m.Generation != 2 || m.Labels["team"] != "a" {
		t.Fatalf("label edit: generation %d labels %v", m.Generation, m.Labels)
	}

	// The store's own writes afterwards are not taken for hand edits.
	cur := ev.Object.(*api.Deployment)
	cur.Spec.KeepReleases = 9
	v4, err := s.Update(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, next(t, ch), store.Modified, "Deployment/web")
	sentinel(t, s, ch)
	if now, _ := s.Get(ctx, api.KindDeployment, "web"); now.GetObjectMeta().ResourceVersion != v4.GetObjectMeta().ResourceVersion {
		t.Fatal("the store's own write came back as a hand edit")
	}
}

func TestHandEditSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	mustCreate(t, s, storetest.Deployment("web", "/srv/repo"))
	s.Close()
	// Edited while the store is not running.
	writeFile(t, filepath.Join(dir, "deployments", "web.yaml"), deploymentYAML("web", "v2"))
	s = open(t, dir)
	got, err := s.Get(ctx, api.KindDeployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.(*api.Deployment).Spec.Source.Ref != "v2" || got.GetObjectMeta().Generation != 2 {
		t.Fatalf("edit while stopped: ref %q generation %d", got.(*api.Deployment).Spec.Source.Ref, got.GetObjectMeta().Generation)
	}
	s.Close()
	// Reopening again changes nothing.
	s = open(t, dir)
	again, _ := s.Get(ctx, api.KindDeployment, "web")
	if diff := cmp.Diff(got, again); diff != "" {
		t.Fatalf("second reopen changed the object:\n%s", diff)
	}
}

func TestEditorRenameOver(t *testing.T) {
	// A long debounce: the editor's steps below take microseconds.
	s := open(t, t.TempDir(), WithDebounce(200*time.Millisecond))
	mustCreate(t, s, storetest.Deployment("web", "/srv/repo"))
	ch := watch(t, s)
	dir := filepath.Join(s.Dir(), "deployments")
	path := filepath.Join(dir, "web.yaml")

	// What vim does on :w with backupcopy=no.
	writeFile(t, filepath.Join(dir, ".web.yaml.swp"), "swap")
	writeFile(t, filepath.Join(dir, "4913"), "")
	os.Remove(filepath.Join(dir, "4913"))
	if err := os.Rename(path, path+"~"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, deploymentYAML("web", "release"))
	os.Remove(filepath.Join(dir, ".web.yaml.swp"))
	// What many other editors do: write a temporary file, rename it over.
	writeFile(t, filepath.Join(dir, ".web.yaml.new"), deploymentYAML("web", "v3"))
	if err := os.Rename(filepath.Join(dir, ".web.yaml.new"), path); err != nil {
		t.Fatal(err)
	}

	ev := next(t, ch)
	expect(t, ev, store.Modified, "Deployment/web")
	if got := ev.Object.(*api.Deployment); got.Spec.Source.Ref != "v3" || got.Metadata.Generation != 2 {
		t.Fatalf("after rename-over: ref %q generation %d", got.Spec.Source.Ref, got.Metadata.Generation)
	}
	sentinel(t, s, ch) // no DELETED/ADDED in between, and no object for web.yaml~
	if l, _ := s.List(t.Context(), api.KindDeployment, store.ListOptions{}); len(l) != 1 {
		t.Fatalf("deployments after editing: %d", len(l))
	}
	if p := s.Problems(); len(p) != 0 {
		t.Fatalf("editor files reported as problems: %v", p)
	}
}

func TestDropInAndRemove(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	ch := watch(t, s)
	path := filepath.Join(s.Dir(), "deployments", "new.yaml")
	writeFile(t, path, deploymentYAML("new", "main"))
	ev := next(t, ch)
	expect(t, ev, store.Added, "Deployment/new")
	m := ev.Object.GetObjectMeta()
	if m.Generation != 1 || m.UID == "" || m.CreationTimestamp == nil || m.ResourceVersion == "" {
		t.Fatalf("dropped-in object metadata: %+v", m)
	}
	if _, err := s.Get(ctx, api.KindDeployment, "new"); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(s.Dir(), "deployments", ".state", "new.json")
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file for a dropped-in object: %v", err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	ev = next(t, ch)
	expect(t, ev, store.Deleted, "Deployment/new")
	if ev.Object.GetObjectMeta().UID != m.UID {
		t.Fatal("DELETED must carry the last stored object")
	}
	if _, err := s.Get(ctx, api.KindDeployment, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after removal: %v", err)
	}
	if _, err := os.Stat(state); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("state file left after removal: %v", err)
	}
}

func TestCorruptAtOpen(t *testing.T) {
	for _, tc := range []struct {
		name, file, data, reason string
	}{
		{"Truncated", "web.yaml", "apiVersion: bakery.dev/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  source: {repo: /srv/re", "invalid YAML"},
		{"Empty", "web.yaml", "", "holds 0 objects"},
		{"NameMismatch", "web.yaml", deploymentYAML("other", "main"), `metadata.name is "other"`},
		{"UnknownField", "web.yaml", strings.Replace(deploymentYAML("web", "main"), "  nodes:", "  nodez: [x]\n  nodes:", 1), "nodez"},
		{"Invalid", "web.yaml", strings.Replace(deploymentYAML("web", "main"), "ref: main", "ref: ..", 1), "spec.source.ref"},
		{"WrongKind", "web.yaml", nodeYAML("web", "10.0.0.1", ""), `kind is "Node"`},
		{"BadFileName", "Web.yaml", deploymentYAML("web", "main"), "not a valid Deployment name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			mustCreate(t, s, storetest.Deployment("web", "/srv/repo"))
			mustCreate(t, s, storetest.Deployment("ok", "/srv/repo"))
			s.Close()
			path := filepath.Join(dir, "deployments", tc.file)
			writeFile(t, path, tc.data)

			_, err := Open(dir, WithLogger(testLogger(t)))
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("open: err = %v, want ErrCorrupt naming %s and %q", err, path, tc.reason)
			}
			// The failed Open released the directory.
			s = open(t, dir, TolerateCorrupt())
			ps := s.Problems()
			if len(ps) != 1 || ps[0].File != path || !strings.Contains(ps[0].Reason, tc.reason) {
				t.Fatalf("problems: %v", ps)
			}
			if _, err := s.Get(t.Context(), api.KindDeployment, "ok"); err != nil {
				t.Fatalf("a good object was not loaded: %v", err)
			}
			if readFile(t, path) != tc.data {
				t.Fatal("the store changed the corrupt file")
			}
		})
	}
}

func TestCorruptWhileRunning(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	v1 := mustCreate(t, s, storetest.Deployment("web", "/srv/repo"))
	ch := watch(t, s)
	path := filepath.Join(s.Dir(), "deployments", "web.yaml")
	good := readFile(t, path)
	truncated := good[:len(good)/2]
	writeFile(t, path, truncated)
	eventually(t, "the problem to be reported", func() bool { return len(s.Problems()) == 1 })
	p := s.Problems()[0]
	if p.File != path || p.Reason == "" || p.Time.IsZero() {
		t.Fatalf("problem: %+v", p)
	}
	got, err := s.Get(ctx, api.KindDeployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v1, got); diff != "" {
		t.Fatalf("the last good object was not kept:\n%s", diff)
	}
	if readFile(t, path) != truncated {
		t.Fatal("the store touched the corrupt file")
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping with a problem file: %v", err)
	}
	// Fixed by hand: the problem goes, the edit is taken.
	writeFile(t, path, deploymentYAML("web", "fixed"))
	ev := next(t, ch)
	expect(t, ev, store.Modified, "Deployment/web")
	if ev.Object.(*api.Deployment).Spec.Source.Ref != "fixed" {
		t.Fatal("fixed file not taken")
	}
	if ps := s.Problems(); len(ps) != 0 {
		t.Fatalf("problems after the fix: %v", ps)
	}

	// A bad new file is reported and creates nothing; removing it clears it.
	bad := filepath.Join(s.Dir(), "nodes", "bad.yaml")
	writeFile(t, bad, "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: bad}\nspec: {address: 10.0.0.1, colour: red}\n")
	eventually(t, "the bad file to be reported", func() bool { return len(s.Problems()) == 1 })
	if _, err := s.Get(ctx, api.KindNode, "bad"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a bad file created an object: %v", err)
	}
	os.Remove(bad)
	eventually(t, "the problem to clear", func() bool { return len(s.Problems()) == 0 })
}

func TestSecondOpen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	_, err := Open(dir, WithLogger(testLogger(t)))
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open: err = %v, want ErrLocked naming %s", err, dir)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("the error should name the holder's pid: %v", err)
	}
	s.Close()
	open(t, dir).Close()
}

func TestClosed(t *testing.T) {
	s := open(t, t.TempDir())
	ch := watch(t, s)
	s.Close()
	if _, ok := <-ch; ok {
		t.Fatal("watch channel open after Close")
	}
	if _, err := s.Create(t.Context(), storetest.Node("n1", "10.0.0.1", nil)); err == nil {
		t.Fatal("create after close succeeded")
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("ping after close succeeded")
	}
}

func TestCrashLeftovers(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	mustCreate(t, s, storetest.Node("n1", "10.0.0.1", nil))
	s.Close()
	nodes := filepath.Join(dir, "nodes")

	// Temporary files of a commit that never renamed them, and a state
	// file whose object was never completely created.
	writeFile(t, filepath.Join(nodes, ".n2.yaml.tmp-12345"), nodeYAML("n2", "10.0.0.2", ""))
	writeFile(t, filepath.Join(nodes, ".state", ".n1.yaml.tmp-1"), "garbage: [")
	orphan := filepath.Join(nodes, ".state", "n3.json")
	writeFile(t, orphan, `{"uid": "x", "generation": 1, "resourceVersion": "9", "creationTimestamp": "2026-01-01T00:00:00Z", "specHash": "a", "fileHash": "b"}`)

	s = open(t, dir)
	l, _ := s.List(ctx, api.KindNode, store.ListOptions{})
	if len(l) != 1 || l[0].GetObjectMeta().Name != "n1" {
		t.Fatalf("after crash: nodes %v", l)
	}
	ents, _ := os.ReadDir(nodes)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	if _, err := os.Stat(orphan); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("orphan state file left: %v", err)
	}
	// The orphan's resourceVersion is not reused.
	if n := mustCreate(t, s, storetest.Node("n4", "10.0.0.4", nil)); rv(t, n) <= 9 {
		t.Errorf("resourceVersion %d reuses the orphan's 9", rv(t, n))
	}
}

func TestJournalReplay(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	mustCreate(t, s, storetest.Node("n1", "10.0.0.1", nil))
	mustCreate(t, s, storetest.Node("old", "10.0.0.9", nil))
	s.Close()
	// Stage a transaction's files and journal by hand, as a commit that
	// crashed after writing its journal would have left them: n1 changes,
	// n2 is created, old is deleted.
	var ops []fileOp
	stage := func(o api.Object, gen int64, rv string) {
		m := o.GetObjectMeta()
		m.UID, m.Generation, m.ResourceVersion, m.CreationTimestamp = "uid-"+m.Name, gen, rv, api.Now()
		spec, err := encodeSpec(o)
		if err != nil {
			t.Fatal(err)
		}
		e := &entry{obj: o, specHash: hashSpec(o), fileHash: hashBytes(spec)}
		state, err := encodeState(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct {
			path string
			data []byte
		}{{s.specPath(api.KindNode, m.Name), spec}, {s.statePath(api.KindNode, m.Name), state}} {
			tmp, err := writeTemp(f.path, f.data, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, fileOp{From: tmp, To: f.path})
		}
	}
	stage(storetest.Node("n1", "10.0.0.100", nil), 2, "50")
	stage(storetest.Node("n2", "10.0.0.2", nil), 1, "51")
	ops = append(ops, fileOp{To: s.specPath(api.KindNode, "old")}, fileOp{To: s.statePath(api.KindNode, "old")})
	if err := writeJournal(dir, ops); err != nil {
		t.Fatal(err)
	}
	// Half of it was applied before the crash.
	if err := applyOps(dir, ops[:1]); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	l, _ := s.List(ctx, api.KindNode, store.ListOptions{})
	var got []string
	for _, o := range l {
		got = append(got, fmt.Sprintf("%s %s gen=%d rv=%s", o.GetObjectMeta().Name, o.(*api.Node).Spec.Address, o.GetObjectMeta().Generation, o.GetObjectMeta().ResourceVersion))
	}
	want := []string{"n1 10.0.0.100 gen=2 rv=50", "n2 10.0.0.2 gen=1 rv=51"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after replay (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, journalFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("journal left after replay")
	}
}

func TestMultiObjectCommit(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	objs := []api.Object{storetest.Node("n1", "10.0.0.1", nil), storetest.Deployment("a", "/r"), storetest.Deployment("b", "/r")}
	if _, err := store.Apply(ctx, s, objs, store.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, journalFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("journal left after a commit")
	}
	// A failed transaction writes nothing at all.
	boom := errors.New("boom")
	err := s.Txn(ctx, func(tx store.Tx) error {
		if _, err := tx.Create(ctx, storetest.Deployment("c", "/r")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "deployments"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{".state", "a.yaml", "b.yaml"}, names); diff != "" {
		t.Fatalf("deployments/ (-want +got):\n%s", diff)
	}
}

func TestInvalidNameTouchesNothing(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	s := open(t, dir)
	for _, name := range []string{"../etc", "../../x", "a/b", "..", "."} {
		if _, err := s.Create(ctx, storetest.Node(name, "10.0.0.1", nil)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("create %q: %v", name, err)
		}
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 {
		t.Fatalf("files appeared beside the data directory: %v", ents)
	}
	for _, sub := range []string{"", "nodes", "nodes/.state"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".json") {
				t.Errorf("%s/%s written for an invalid name", sub, e.Name())
			}
		}
	}
}

func TestSlowWatcherIsClosed(t *testing.T) {
	s := open(t, t.TempDir(), WithWatchBuffer(2))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	slow, err := s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fast := watch(t, s)
	for i := range 2 {
		mustCreate(t, s, storetest.Node(fmt.Sprintf("n%d", i), "10.0.0.1", nil))
		next(t, fast)
	}
	mustCreate(t, s, storetest.Node("n9", "10.0.0.1", nil))
	expect(t, next(t, fast), store.Added, "Node/n9")
	n := 0
	for range slow {
		n++
	}
	if n != 2 {
		t.Fatalf("slow watcher got %d events before its channel closed, want 2", n)
	}
}

func TestTxnMisuse(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	var leaked store.Tx
	if err := s.Txn(ctx, func(tx store.Tx) error { leaked = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := leaked.Create(ctx, storetest.Node("n1", "10.0.0.1", nil)); err == nil {
		t.Fatal("a Tx used after its Txn returned must fail")
	}
	// The kind must match the object's type; an empty kind is taken from it.
	n := storetest.Node("n1", "10.0.0.1", nil)
	n.Kind = api.KindDeployment
	if _, err := s.Create(ctx, n); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("mismatched kind: err = %v, want ErrInvalid", err)
	}
	n.Kind = ""
	if got, err := s.Create(ctx, n); err != nil || got.GetTypeMeta().Kind != api.KindNode {
		t.Fatalf("create without kind: %v %v", got, err)
	}
	// A panic in fn writes nothing, releases the store and propagates.
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_ = s.Txn(ctx, func(tx store.Tx) error {
			if _, err := tx.Create(ctx, storetest.Node("n2", "10.0.0.1", nil)); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if _, err := s.Get(ctx, api.KindNode, "n2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("write of a panicking txn visible: %v", err)
	}
	if _, err := os.Stat(s.specPath(api.KindNode, "n2")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file of a panicking txn written: %v", err)
	}
	if _, err := s.Create(ctx, storetest.Node("n3", "10.0.0.1", nil)); err != nil {
		t.Fatalf("store unusable after a panicking txn: %v", err)
	}
	// A cancelled context aborts before anything is written.
	cctx, cancel := context.WithCancel(ctx)
	err := s.Txn(cctx, func(tx store.Tx) error {
		_, err := tx.Create(cctx, storetest.Node("n4", "10.0.0.1", nil))
		cancel()
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled txn: err = %v", err)
	}
	if _, err := s.Get(ctx, api.KindNode, "n4"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a cancelled txn was committed")
	}
}

func TestCommitFailures(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	ch := watch(t, s)
	first := mustCreate(t, s, storetest.Node("n1", "10.0.0.1", nil))
	expect(t, next(t, ch), store.Added, "Node/n1")

	// A file cannot be written: nothing happens, the store stays usable.
	states := filepath.Join(dir, "deployments", ".state")
	if err := os.RemoveAll(states); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, storetest.Deployment("d1", "/r")); err == nil {
		t.Fatal("create succeeded without its state directory")
	}
	if _, err := s.Get(ctx, api.KindDeployment, "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed commit is visible: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "deployments")); len(ents) != 0 {
		t.Fatalf("a failed commit left files: %v", ents)
	}
	if err := os.Mkdir(states, 0o700); err != nil {
		t.Fatal(err)
	}
	d1 := mustCreate(t, s, storetest.Deployment("d1", "/r"))
	if rv(t, d1) != rv(t, first)+1 {
		t.Errorf("resourceVersion %d after a failed commit, want %d (a failed commit allocates none)", rv(t, d1), rv(t, first)+1)
	}
	expect(t, next(t, ch), store.Added, "Deployment/d1")

	// A rename fails half-way: the store refuses writes until reopened,
	// and reopening finds a consistent state.
	blocker := filepath.Join(dir, "nodes", "n9.yaml")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, storetest.Node("n9", "10.0.0.9", nil)); err == nil {
		t.Fatal("create over a directory succeeded")
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("ping after an incomplete commit succeeded")
	}
	if _, err := s.Create(ctx, storetest.Node("n10", "10.0.0.10", nil)); err == nil {
		t.Fatal("a store with an incomplete commit accepted a write")
	}
	s.Close()
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	l, _ := s.List(ctx, api.KindNode, store.ListOptions{})
	if len(l) != 1 || l[0].GetObjectMeta().Name != "n1" {
		t.Fatalf("after recovery: %d nodes", len(l))
	}
	if _, err := os.Stat(s.statePath(api.KindNode, "n9")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("state of the half-created object left: %v", err)
	}
}
