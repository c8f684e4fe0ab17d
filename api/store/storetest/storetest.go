// Package storetest is the conformance suite every store.Store
// implementation must pass. An implementation's tests call Run with a
// function that returns a new, empty store, and, if the store also keeps
// rollouts (store.Rollouts), RunRollouts with the same function.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// NewStore returns a new, empty store; it is closed by the caller's cleanup.
type NewStore func(t *testing.T) store.Store

// Run runs the whole suite.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGetDelete", testCreateGetDelete},
		{"InvalidNames", testInvalidNames},
		{"ListSelector", testListSelector},
		{"UpdateSpec", testUpdateSpec},
		{"UpdateStatus", testUpdateStatus},
		{"DeletePrecondition", testDeletePrecondition},
		{"Watch", testWatch},
		{"WatchKindFilter", testWatchKindFilter},
		{"ConcurrentWriters", testConcurrentWriters},
		{"TxnAtomic", testTxnAtomic},
		{"Apply", testApply},
		{"IngressHostRule", testIngressHostRule},
		{"ApplyRace", testApplyRace},
		{"Tokens", testTokens},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// Node returns a defaulted Node for tests.
func Node(name, addr string, labels map[string]string) *api.Node {
	n := &api.Node{
		TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNode},
		Metadata: api.ObjectMeta{Name: name, Labels: labels},
		Spec:     api.NodeSpec{Address: addr},
	}
	n.Default()
	return n
}

// Deployment returns a defaulted Deployment for tests.
func Deployment(name, repo string) *api.Deployment {
	d := &api.Deployment{
		TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment},
		Metadata: api.ObjectMeta{Name: name},
		Spec: api.DeploymentSpec{
			Source: api.Source{Repo: repo},
			Nodes:  []string{"n1"},
			Run:    api.Run{Command: "./server"},
		},
	}
	d.Default()
	return d
}

func mustCreate(t *testing.T, s store.Store, o api.Object) api.Object {
	t.Helper()
	got, err := s.Create(t.Context(), o)
	if err != nil {
		t.Fatalf("create %s: %v", api.Ref(o), err)
	}
	return got
}

func meta(o api.Object) *api.ObjectMeta { return o.GetObjectMeta() }

func testCreateGetDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := Node("n1", "10.0.0.1", map[string]string{"role": "web"})
	in.Metadata.Annotations = map[string]string{"note": "first"}
	created := mustCreate(t, s, in)
	m := meta(created)
	if m.UID == "" || m.ResourceVersion == "" || m.CreationTimestamp == nil {
		t.Fatalf("create must set uid, resourceVersion and creationTimestamp, got %+v", m)
	}
	if m.Generation != 1 {
		t.Fatalf("generation after create = %d, want 1", m.Generation)
	}
	if created.GetTypeMeta().Kind != api.KindNode || created.GetTypeMeta().APIVersion != api.APIVersion {
		t.Fatalf("type meta = %+v", created.GetTypeMeta())
	}
	got, err := s.Get(ctx, api.KindNode, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Fatalf("get differs from create (-create +get):\n%s", diff)
	}
	if diff := cmp.Diff(in.Spec, got.(*api.Node).Spec); diff != "" {
		t.Fatalf("spec not kept (-want +got):\n%s", diff)
	}
	// The returned object is a copy: changing it changes nothing stored.
	got.(*api.Node).Spec.Address = "changed"
	again, _ := s.Get(ctx, api.KindNode, "n1")
	if again.(*api.Node).Spec.Address != "10.0.0.1" {
		t.Fatal("store returned an alias of its own data")
	}
	if _, err := s.Create(ctx, Node("n1", "10.0.0.2", nil)); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("second create: err = %v, want ErrAlreadyExists", err)
	}
	// Same name, other kind: independent.
	mustCreate(t, s, Deployment("n1", "/srv/repo"))
	if _, err := s.Get(ctx, api.KindDeployment, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, api.KindNode, "n1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, api.KindNode, "n1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, api.KindNode, "n1", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete missing: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, api.KindDeployment, "n1"); err != nil {
		t.Fatalf("deployment n1 must survive the node's deletion: %v", err)
	}
	// A re-created object is a new object.
	re := mustCreate(t, s, Node("n1", "10.0.0.3", nil))
	if meta(re).UID == m.UID {
		t.Fatal("a re-created object must get a new uid")
	}
}

func testInvalidNames(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, name := range []string{"../etc", "", "UPPER", "a/b", "a b", "-x", "x-", "a.b", string(make([]byte, 64))} {
		n := Node(name, "10.0.0.1", nil)
		if _, err := s.Create(ctx, n); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("create %q: err = %v, want ErrInvalid", name, err)
		}
		if _, err := s.Get(ctx, api.KindNode, name); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("get %q: err = %v, want ErrInvalid", name, err)
		}
		if err := s.Delete(ctx, api.KindNode, name, ""); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("delete %q: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Get(ctx, "Pod", "x"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("unknown kind: err = %v, want ErrInvalid", err)
	}
	list, err := s.List(ctx, api.KindNode, store.ListOptions{})
	if err != nil || len(list) != 0 {
		t.Fatalf("nothing may be stored by invalid requests: %d objects, %v", len(list), err)
	}
}

func names(objs []api.Object) []string {
	out := []string{}
	for _, o := range objs {
		out = append(out, meta(o).Name)
	}
	return out
}

func testListSelector(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, Node("c", "10.0.0.3", map[string]string{"role": "web", "zone": "b"}))
	mustCreate(t, s, Node("a", "10.0.0.1", map[string]string{"role": "web", "zone": "a"}))
	mustCreate(t, s, Node("b", "10.0.0.2", map[string]string{"role": "db"}))
	mustCreate(t, s, Deployment("a", "/srv/repo"))
	for _, tc := range []struct {
		sel  string
		want []string
	}{
		{"", []string{"a", "b", "c"}},
		{"role=web", []string{"a", "c"}},
		{"role=web,zone=b", []string{"c"}},
		{"role!=web", []string{"b"}},
		{"zone", []string{"a", "c"}},
		{"!zone", []string{"b"}},
		{"role=none", []string{}},
	} {
		sel, err := api.ParseSelector(tc.sel)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.List(ctx, api.KindNode, store.ListOptions{Selector: sel})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, names(got)); diff != "" {
			t.Errorf("List(%q) (-want +got):\n%s", tc.sel, diff)
		}
	}
	deps, err := s.List(ctx, api.KindDeployment, store.ListOptions{})
	if err != nil || len(deps) != 1 {
		t.Fatalf("deployments: %v %v", names(deps), err)
	}
	if _, ok := deps[0].(*api.Deployment); !ok {
		t.Fatalf("list returned %T, want *api.Deployment", deps[0])
	}
}

func testUpdateSpec(t *testing.T, s store.Store) {
	ctx := t.Context()
	v1 := mustCreate(t, s, Deployment("web", "/srv/repo"))
	rv1 := meta(v1).ResourceVersion

	// Identical update: nothing written.
	same, err := s.Update(ctx, v1.DeepCopyObject())
	if err != nil {
		t.Fatal(err)
	}
	if meta(same).ResourceVersion != rv1 || meta(same).Generation != 1 {
		t.Fatalf("identical update changed rv/generation: %s/%d", meta(same).ResourceVersion, meta(same).Generation)
	}

	// Spec change: generation 2, new rv.
	d := v1.DeepCopyObject().(*api.Deployment)
	d.Spec.Source.Ref = "release"
	v2, err := s.Update(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if meta(v2).Generation != 2 || meta(v2).ResourceVersion == rv1 {
		t.Fatalf("spec update: generation %d rv %s (old rv %s)", meta(v2).Generation, meta(v2).ResourceVersion, rv1)
	}
	if meta(v2).UID != meta(v1).UID || !meta(v2).CreationTimestamp.Equal(meta(v1).CreationTimestamp.Time) {
		t.Fatal("update must keep uid and creationTimestamp")
	}
	got, _ := s.Get(ctx, api.KindDeployment, "web")
	if got.(*api.Deployment).Spec.Source.Ref != "release" {
		t.Fatal("spec change not stored")
	}

	// Stale resourceVersion: conflict, nothing written.
	stale := v1.DeepCopyObject().(*api.Deployment)
	stale.Spec.Source.Ref = "other"
	if _, err := s.Update(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: err = %v, want ErrConflict", err)
	}
	got, _ = s.Get(ctx, api.KindDeployment, "web")
	if got.(*api.Deployment).Spec.Source.Ref != "release" {
		t.Fatal("a conflicting update must write nothing")
	}

	// Labels only: new rv, same generation.
	l := got.DeepCopyObject()
	meta(l).Labels = map[string]string{"team": "a"}
	v3, err := s.Update(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if meta(v3).Generation != 2 || meta(v3).ResourceVersion == meta(v2).ResourceVersion || meta(v3).Labels["team"] != "a" {
		t.Fatalf("label update: %+v", meta(v3))
	}

	// Empty resourceVersion: unconditional.
	u := v3.DeepCopyObject().(*api.Deployment)
	meta(u).ResourceVersion = ""
	u.Spec.KeepReleases = 7
	v4, err := s.Update(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if meta(v4).Generation != 3 {
		t.Fatalf("generation = %d, want 3", meta(v4).Generation)
	}

	// The store owns generation/uid: values in the request are ignored.
	w := v4.DeepCopyObject()
	meta(w).Generation = 99
	meta(w).UID = "forged"
	v5, err := s.Update(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if meta(v5).Generation != 3 || meta(v5).UID != meta(v1).UID {
		t.Fatalf("update let the caller set generation/uid: %+v", meta(v5))
	}

	if _, err := s.Update(ctx, Deployment("missing", "/r")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: err = %v, want ErrNotFound", err)
	}
}

func testUpdateStatus(t *testing.T, s store.Store) {
	ctx := t.Context()
	v1 := mustCreate(t, s, Deployment("web", "/srv/repo"))
	d := v1.DeepCopyObject().(*api.Deployment)
	d.Status.Commit = "abc"
	d.Status.ObservedGeneration = 1
	api.SetCondition(&d.Status.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: "Converged"})
	d.Spec.Source.Ref = "ignored" // status updates never change spec
	v2, err := s.UpdateStatus(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if meta(v2).Generation != 1 || meta(v2).ResourceVersion == meta(v1).ResourceVersion {
		t.Fatalf("status update: generation %d rv %s", meta(v2).Generation, meta(v2).ResourceVersion)
	}
	got, _ := s.Get(ctx, api.KindDeployment, "web")
	gd := got.(*api.Deployment)
	if gd.Spec.Source.Ref != api.DefaultRef {
		t.Fatalf("status update changed spec: ref %q", gd.Spec.Source.Ref)
	}
	if diff := cmp.Diff(d.Status, gd.Status); diff != "" {
		t.Fatalf("status not stored (-want +got):\n%s", diff)
	}
	// Unchanged status: nothing written.
	v3, err := s.UpdateStatus(ctx, got.DeepCopyObject())
	if err != nil {
		t.Fatal(err)
	}
	if meta(v3).ResourceVersion != meta(v2).ResourceVersion {
		t.Fatal("an unchanged status must not be written")
	}
	// Stale rv.
	stale := v1.DeepCopyObject().(*api.Deployment)
	stale.Status.Commit = "zzz"
	if _, err := s.UpdateStatus(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale status update: err = %v, want ErrConflict", err)
	}
	// A spec update keeps the status.
	sp := got.DeepCopyObject().(*api.Deployment)
	sp.Spec.KeepReleases = 5
	v4, err := s.Update(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	if v4.(*api.Deployment).Status.Commit != "abc" || meta(v4).Generation != 2 {
		t.Fatalf("spec update lost status or generation: %+v %d", v4.(*api.Deployment).Status, meta(v4).Generation)
	}
	if _, err := s.UpdateStatus(ctx, Deployment("missing", "/r")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("status of missing: err = %v, want ErrNotFound", err)
	}
}

func testDeletePrecondition(t *testing.T, s store.Store) {
	ctx := t.Context()
	v1 := mustCreate(t, s, Node("n1", "10.0.0.1", nil))
	n := v1.DeepCopyObject().(*api.Node)
	n.Spec.Port = 2222
	if _, err := s.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, api.KindNode, "n1", meta(v1).ResourceVersion); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete with stale rv: err = %v, want ErrConflict", err)
	}
	cur, err := s.Get(ctx, api.KindNode, "n1")
	if err != nil {
		t.Fatal("a refused delete must keep the object")
	}
	if err := s.Delete(ctx, api.KindNode, "n1", meta(cur).ResourceVersion); err != nil {
		t.Fatal(err)
	}
}

// next waits (bounded) for the next event.
func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return store.Event{}
}

func testWatch(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := mustCreate(t, s, Node("n1", "10.0.0.1", nil))
	n := v1.DeepCopyObject().(*api.Node)
	n.Spec.Port = 2222
	v2, err := s.Update(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	st := v2.DeepCopyObject().(*api.Node)
	st.Status.Reachable = true
	v3, err := s.UpdateStatus(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	// A no-op update produces no event.
	if _, err := s.Update(t.Context(), v3.DeepCopyObject()); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, Deployment("d1", "/srv/repo"))
	if err := s.Delete(t.Context(), api.KindNode, "n1", ""); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ  store.EventType
		ref  string
		rv   string
		port int
	}{
		{store.Added, "Node/n1", meta(v1).ResourceVersion, 22},
		{store.Modified, "Node/n1", meta(v2).ResourceVersion, 2222},
		{store.Modified, "Node/n1", meta(v3).ResourceVersion, 2222},
		{store.Added, "Deployment/d1", "", 0},
		{store.Deleted, "Node/n1", "", 2222},
	}
	for i, w := range want {
		ev := next(t, ch)
		if ev.Type != w.typ || api.Ref(ev.Object) != w.ref {
			t.Fatalf("event %d = %s %s, want %s %s", i, ev.Type, api.Ref(ev.Object), w.typ, w.ref)
		}
		if w.rv != "" && meta(ev.Object).ResourceVersion != w.rv {
			t.Errorf("event %d rv = %s, want %s", i, meta(ev.Object).ResourceVersion, w.rv)
		}
		if n, ok := ev.Object.(*api.Node); ok && n.Spec.Port != w.port {
			t.Errorf("event %d carries port %d, want %d", i, n.Spec.Port, w.port)
		}
		if i == 2 && !ev.Object.(*api.Node).Status.Reachable {
			t.Errorf("status event does not carry the new status")
		}
	}
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected extra event %s %s", ev.Type, api.Ref(ev.Object))
		}
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	// After cancel the channel closes (bounded wait).
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed after cancel")
		}
	}
}

func testWatchKindFilter(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := s.Watch(ctx, store.WatchOptions{Kind: api.KindDeployment})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, Node("n1", "10.0.0.1", nil))
	mustCreate(t, s, Deployment("d1", "/srv/repo"))
	ev := next(t, ch)
	if api.Ref(ev.Object) != "Deployment/d1" {
		t.Fatalf("kind filter let through %s", api.Ref(ev.Object))
	}
}

func testConcurrentWriters(t *testing.T, s store.Store) {
	ctx := t.Context()
	v1 := mustCreate(t, s, Deployment("web", "/srv/repo"))
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := v1.DeepCopyObject().(*api.Deployment)
			d.Spec.KeepReleases = 10 + i
			_, errs[i] = s.Update(ctx, d)
		}()
	}
	wg.Wait()
	wins := 0
	winner := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = i
		case errors.Is(err, store.ErrConflict):
		default:
			t.Fatalf("writer %d: unexpected error %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers won a conflicting update, want exactly 1", wins)
	}
	got, _ := s.Get(ctx, api.KindDeployment, "web")
	if got.(*api.Deployment).Spec.KeepReleases != 10+winner || meta(got).Generation != 2 {
		t.Fatalf("stored keepReleases %d generation %d, want the winner's %d and 2", got.(*api.Deployment).Spec.KeepReleases, meta(got).Generation, 10+winner)
	}
}

func testTxnAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, Node("taken", "10.0.0.9", nil))
	boom := errors.New("boom")
	err := s.Txn(ctx, func(tx store.Tx) error {
		if _, err := tx.Create(ctx, Node("n1", "10.0.0.1", nil)); err != nil {
			return err
		}
		// Read your own writes.
		if _, err := tx.Get(ctx, api.KindNode, "n1"); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		l, err := tx.List(ctx, api.KindNode, store.ListOptions{})
		if err != nil || len(l) != 2 {
			return fmt.Errorf("list own write: %v %v", names(l), err)
		}
		if _, err := tx.Create(ctx, Deployment("d1", "/srv/repo")); err != nil {
			return err
		}
		if err := tx.Delete(ctx, api.KindNode, "taken", ""); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("txn err = %v, want boom", err)
	}
	if _, err := s.Get(ctx, api.KindNode, "n1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back create is visible: %v", err)
	}
	if _, err := s.Get(ctx, api.KindDeployment, "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rolled-back create is visible: %v", err)
	}
	if _, err := s.Get(ctx, api.KindNode, "taken"); err != nil {
		t.Fatalf("rolled-back delete took effect: %v", err)
	}
	// A committed transaction is visible as a whole.
	err = s.Txn(ctx, func(tx store.Tx) error {
		if _, err := tx.Create(ctx, Node("n2", "10.0.0.2", nil)); err != nil {
			return err
		}
		_, err := tx.Create(ctx, Node("n3", "10.0.0.3", nil))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := s.List(ctx, api.KindNode, store.ListOptions{})
	if diff := cmp.Diff([]string{"n2", "n3", "taken"}, names(l)); diff != "" {
		t.Fatalf("after commit (-want +got):\n%s", diff)
	}
}

func testApply(t *testing.T, s store.Store) {
	ctx := t.Context()
	bundle := []api.Object{Node("n1", "10.0.0.1", nil), Deployment("web", "/srv/repo")}
	res, err := store.Apply(ctx, s, bundle, store.ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Action != store.Created || res[1].Action != store.Created {
		t.Fatalf("dry run results: %+v", res)
	}
	if l, _ := s.List(ctx, api.KindNode, store.ListOptions{}); len(l) != 0 {
		t.Fatal("dry run wrote objects")
	}
	res, err = store.Apply(ctx, s, bundle, store.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Action != store.Created || res[1].Action != store.Created {
		t.Fatalf("apply results: %+v", res)
	}
	res, err = store.Apply(ctx, s, bundle, store.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Action != store.Unchanged || res[1].Action != store.Unchanged {
		t.Fatalf("re-apply must be unchanged: %s %s", res[0].Action, res[1].Action)
	}
	d := Deployment("web", "/srv/repo")
	d.Spec.Source.Ref = "v2"
	res, err = store.Apply(ctx, s, []api.Object{Node("n1", "10.0.0.1", nil), d}, store.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Action != store.Unchanged || res[1].Action != store.Configured || meta(res[1].New).Generation != 2 {
		t.Fatalf("apply change: %s %s gen %d", res[0].Action, res[1].Action, meta(res[1].New).Generation)
	}
	if res[1].Old.(*api.Deployment).Spec.Source.Ref != api.DefaultRef {
		t.Fatal("ApplyResult.Old must hold the previous object")
	}
	// A duplicate in one bundle is refused and nothing is applied.
	dup := []api.Object{Node("n9", "10.0.0.9", nil), Node("n9", "10.0.0.8", nil)}
	if _, err := store.Apply(ctx, s, dup, store.ApplyOptions{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("duplicate bundle: err = %v, want ErrInvalid", err)
	}
	if _, err := s.Get(ctx, api.KindNode, "n9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a refused bundle applied an object")
	}
	// A broken rule (an ingress host another Deployment claims) rolls the
	// whole bundle back.
	mustCreate(t, s, withHosts(Deployment("other", "/srv/repo"), "taken.example.com"))
	d3 := withHosts(Deployment("web", "/srv/repo"), "taken.example.com")
	d3.Spec.Source.Ref = "v3"
	_, err = store.Apply(ctx, s, []api.Object{Node("n8", "10.0.0.8", nil), d3}, store.ApplyOptions{})
	if err == nil {
		t.Fatal("check error not returned")
	}
	if _, err := s.Get(ctx, api.KindNode, "n8"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a failed bundle left a created object behind")
	}
	got, _ := s.Get(ctx, api.KindDeployment, "web")
	if got.(*api.Deployment).Spec.Source.Ref != "v2" {
		t.Fatal("a failed bundle left an update behind")
	}
}

func testApplyRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Two bundles applied at once: each is all-or-nothing, and afterwards
	// every object holds one bundle's value consistently with its generation.
	const rounds = 5
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for b := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var objs []api.Object
				for i := range 3 {
					d := Deployment(fmt.Sprintf("app%d", i), "/srv/repo")
					d.Spec.KeepReleases = 1 + b*10 + r
					objs = append(objs, d)
				}
				if _, err := store.Apply(ctx, s, objs, store.ApplyOptions{}); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrAlreadyExists) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("racing apply: %v", err)
	}
	l, err := s.List(ctx, api.KindDeployment, store.ListOptions{})
	if err != nil || len(l) != 3 {
		t.Fatalf("after racing applies: %v %v", names(l), err)
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	if err := s.CreateToken(ctx, store.Token{Name: "admin", Hash: "h1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, store.Token{Name: "ci", Hash: "h2", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, store.Token{Name: "admin", Hash: "h3", CreatedAt: now}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("duplicate token name: err = %v", err)
	}
	tok, err := s.TokenByHash(ctx, "h2")
	if err != nil || tok.Name != "ci" || !tok.CreatedAt.Equal(now) {
		t.Fatalf("token by hash: %+v %v", tok, err)
	}
	if _, err := s.TokenByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: err = %v", err)
	}
	l, err := s.ListTokens(ctx)
	if err != nil || len(l) != 2 || l[0].Name != "admin" || l[1].Name != "ci" {
		t.Fatalf("list tokens: %+v %v", l, err)
	}
	if err := s.DeleteToken(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("deleted token still found")
	}
	if err := s.DeleteToken(ctx, "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete missing token: err = %v", err)
	}
}

// withHosts sets d's ingress hosts.
func withHosts(d *api.Deployment, hosts ...string) *api.Deployment {
	d.Spec.Ingress = &api.Ingress{Hosts: hosts}
	return d
}

// wantRuleError fails unless err is a *store.RuleError naming both
// deployments with a violation of field in the written one.
func wantRuleError(t *testing.T, err error, written, other, field string) {
	t.Helper()
	var re *store.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *store.RuleError", err)
	}
	if !strings.Contains(re.Message, "Deployment/"+written) || !strings.Contains(re.Message, "Deployment/"+other) {
		t.Fatalf("the rule error must name both deployments: %q", re.Message)
	}
	for _, v := range re.Violations {
		if v.Kind == api.KindDeployment && v.Name == written && v.Field == field && strings.Contains(v.Reason, "Deployment/"+other) {
			return
		}
	}
	t.Fatalf("no violation of Deployment/%s %s naming %s in %+v", written, field, other, re.Violations)
}

// testIngressHostRule: an ingress host belongs to one Deployment, for
// every write (Create, Update, Apply, Txn), checked when the transaction
// ends (so a host can move in one transaction, in any order), on a dry
// run too.
func testIngressHostRule(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustCreate(t, s, withHosts(Deployment("a", "/srv/repo"), "a.example.com", "shared.example.com"))
	mustCreate(t, s, withHosts(Deployment("b", "/srv/repo"), "b.example.com"))
	// Create claiming a's host.
	_, err := s.Create(ctx, withHosts(Deployment("c", "/srv/repo"), "shared.example.com"))
	wantRuleError(t, err, "c", "a", "spec.ingress.hosts[0]")
	if errors.Is(err, store.ErrConflict) {
		t.Fatal("a broken rule is not a stale resourceVersion (ErrConflict)")
	}
	if _, err := s.Get(ctx, api.KindDeployment, "c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a refused create was stored")
	}
	// Update of b claiming a's host.
	_, err = s.Update(ctx, withHosts(Deployment("b", "/srv/repo"), "b.example.com", "shared.example.com"))
	wantRuleError(t, err, "b", "a", "spec.ingress.hosts[1]")
	got, _ := s.Get(ctx, api.KindDeployment, "b")
	if h := got.(*api.Deployment).Spec.Ingress.Hosts; len(h) != 1 {
		t.Fatalf("a refused update was stored: %v", h)
	}
	// Two deployments claiming one host in one bundle: both named.
	_, err = store.Apply(ctx, s, []api.Object{withHosts(Deployment("x", "/srv/repo"), "x.example.com"), Node("n1", "10.0.0.1", nil),
		withHosts(Deployment("y", "/srv/repo"), "x.example.com")}, store.ApplyOptions{})
	wantRuleError(t, err, "y", "x", "spec.ingress.hosts[0]")
	// A redirected host is claimed too, both ways.
	rd := withHosts(Deployment("redir", "/srv/repo"), "redir.example.com")
	rd.Spec.Ingress.Redirects = []api.Redirect{{From: "b.example.com", To: "redir.example.com"}}
	_, err = s.Create(ctx, rd)
	wantRuleError(t, err, "redir", "b", "spec.ingress.redirects[0].from")
	rd.Spec.Ingress.Redirects[0].From = "www.redir.example.com"
	mustCreate(t, s, rd)
	_, err = s.Create(ctx, withHosts(Deployment("redir2", "/srv/repo"), "www.redir.example.com"))
	wantRuleError(t, err, "redir2", "redir", "spec.ingress.hosts[0]")
	// A dry run reports it as well.
	_, err = store.Apply(ctx, s, []api.Object{withHosts(Deployment("c", "/srv/repo"), "a.example.com")}, store.ApplyOptions{DryRun: true})
	wantRuleError(t, err, "c", "a", "spec.ingress.hosts[0]")
	if l, _ := s.List(ctx, api.KindNode, store.ListOptions{}); len(l) != 0 {
		t.Fatal("a refused bundle stored its node")
	}
	// Moving a host between deployments in one transaction is fine, in
	// either order.
	err = s.Txn(ctx, func(tx store.Tx) error {
		if _, err := tx.Update(ctx, withHosts(Deployment("b", "/srv/repo"), "b.example.com", "shared.example.com")); err != nil {
			return err
		}
		_, err := tx.Update(ctx, withHosts(Deployment("a", "/srv/repo"), "a.example.com"))
		return err
	})
	if err != nil {
		t.Fatalf("moving a host: %v", err)
	}
	// Writing a deployment again with its own hosts, or changing only its
	// labels, is fine.
	if _, err := s.Update(ctx, withHosts(Deployment("b", "/srv/repo"), "b.example.com", "shared.example.com")); err != nil {
		t.Fatal(err)
	}
	l := withHosts(Deployment("a", "/srv/repo"), "a.example.com")
	l.Metadata.Labels = map[string]string{"team": "x"}
	if _, err := s.Update(ctx, l); err != nil {
		t.Fatal(err)
	}
	// A fn that rolls back on purpose still has the rules checked, and
	// writes nothing either way.
	err = s.Txn(ctx, func(tx store.Tx) error {
		if _, err := tx.Create(ctx, withHosts(Deployment("d", "/srv/repo"), "d.example.com")); err != nil {
			return err
		}
		return fmt.Errorf("only trying: %w", store.ErrRollback)
	})
	if !errors.Is(err, store.ErrRollback) {
		t.Fatalf("rolled back txn: err = %v, want ErrRollback", err)
	}
	if _, err := s.Get(ctx, api.KindDeployment, "d"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a rolled-back transaction wrote")
	}
}
