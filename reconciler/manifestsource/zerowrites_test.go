package manifestsource

import (
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/source"
)

// A ManifestSource synced to a commit that has not changed writes no row
// on its resyncs: not its status, not the objects it applied, no event.
// A new commit is written.
func TestManifestSourceConvergedWritesNothing(t *testing.T) {
	ctx := t.Context()
	url := pgtest.DatabaseURL(t)
	st, err := pgstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	repo := newManifestRepo(t)
	repo.commit("web", map[string]string{"deploy/web.yaml": manifestDeployment("web", "/srv/web", "hi")})
	if _, err := st.Create(ctx, manifestSource("apps", repo.dir)); err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Store: st, Mirrors: &source.Mirrors{Dir: t.TempDir()}, Events: events.NewRecorder(st, nil, nil)}
	sync := func() {
		t.Helper()
		if _, err := r.Reconcile(ctx, reconciler.Request{Kind: api.KindManifestSource, Name: "apps"}); err != nil {
			t.Fatal(err)
		}
	}
	// The second sync still records that the applied object is now
	// unchanged (status.unchanged 0 → 1); from then on it is converged.
	sync()
	sync()
	w := pgtest.CountWrites(t, url)
	for range 5 {
		sync()
	}
	if got := w.Take(t); len(got) != 0 {
		t.Errorf("5 resyncs of an unchanged source wrote %s", pgtest.Format(got))
	}
	repo.commit("web 2", map[string]string{"deploy/web.yaml": manifestDeployment("web", "/srv/web", "hello")})
	sync()
	if got := w.Take(t); got["objects/Deployment"] != 1 || got["objects/ManifestSource"] != 1 {
		t.Errorf("a sync of a new commit wrote %s, want the deployment and the source's status", pgtest.Format(got))
	}
}
