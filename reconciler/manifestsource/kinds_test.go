package manifestsource

import (
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/testenv"
	"bakery.dev/bakery/reconciler/source"
)

const (
	remoteNodeManifest = "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: n9}\nspec: {address: 10.0.0.9}\n"
	localNodeManifest  = "apiVersion: bakery.dev/v1\nkind: Node\nmetadata: {name: self}\nspec: {local: true}\n"
)

// TestManifestSourceAllowedKinds: a source writes only the kinds of its
// spec.allowedKinds (default Deployment and Secret) and local Nodes only
// when the server allows them; a repository holding anything else fails
// the sync with a clear error and applies nothing.
func TestManifestSourceAllowedKinds(t *testing.T) {
	ctx := t.Context()
	st := testenv.FileStore(t)
	repo := newManifestRepo(t)
	r := &Reconciler{Store: st, Mirrors: &source.Mirrors{Dir: t.TempDir()}}
	sync := func() *api.ManifestSource {
		t.Helper()
		if _, err := r.Reconcile(ctx, reconciler.Request{Kind: api.KindManifestSource, Name: "apps"}); err != nil {
			t.Fatal(err)
		}
		return getSource(t, st, "apps")
	}
	exists := func(kind, name string) bool {
		_, err := st.Get(ctx, kind, name)
		return err == nil
	}
	c1 := repo.commit("web and a node", map[string]string{
		"deploy/web.yaml":  manifestDeployment("web", "/srv/web", "hi"),
		"deploy/node.yaml": remoteNodeManifest,
	})
	ms := manifestSource("apps", repo.dir)
	if got := strings.Join(ms.Spec.AllowedKinds, ","); got != "Deployment,Secret" {
		t.Fatalf("default allowedKinds %q", got)
	}
	if _, err := st.Create(ctx, ms); err != nil {
		t.Fatal(err)
	}
	ms = sync()
	for _, w := range []string{"Node/n9", "ManifestSource/apps (spec.allowedKinds) may write only Deployment, Secret, not Node"} {
		if !strings.Contains(ms.Status.LastError, w) {
			t.Fatalf("lastError %q lacks %q", ms.Status.LastError, w)
		}
	}
	if ms.Status.LastAttemptedCommit != c1 || ms.Status.LastSyncedCommit != "" || api.IsTrue(ms.Status.Conditions, api.ConditionReady) {
		t.Fatalf("status %+v", ms.Status)
	}
	if exists(api.KindDeployment, "web") || exists(api.KindNode, "n9") {
		t.Fatal("a refused bundle applied something")
	}

	// Node allowed: applied. A local one is still refused without the
	// server's --allow-local-nodes.
	ms.Spec.AllowedKinds = []string{api.KindDeployment, api.KindNode}
	if _, err := st.Update(ctx, ms); err != nil {
		t.Fatal(err)
	}
	if ms = sync(); ms.Status.LastError != "" || !exists(api.KindNode, "n9") || !exists(api.KindDeployment, "web") {
		t.Fatalf("Node allowed: %+v", ms.Status)
	}
	repo.commit("a local node", map[string]string{"deploy/self.yaml": localNodeManifest})
	ms = sync()
	if !strings.Contains(ms.Status.LastError, "spec.local") || !strings.Contains(ms.Status.LastError, "--allow-local-nodes") || exists(api.KindNode, "self") {
		t.Fatalf("local node without the flag: %+v", ms.Status)
	}
	r.AllowLocalNodes = true
	if ms = sync(); ms.Status.LastError != "" || !exists(api.KindNode, "self") {
		t.Fatalf("local node with the flag: %+v", ms.Status)
	}
}
