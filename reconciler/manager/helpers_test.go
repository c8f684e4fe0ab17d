package manager

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/controller"
	nf "bakery.dev/bakery/reconciler/nodefiles"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eventually polls cond every 10ms for at most 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settingsStore is a store that keeps settings.
type settingsStore interface {
	store.Store
	store.Settings
}

func runController(t *testing.T, st store.Store, rec reconciler.Reconciler, opts controller.Options) *controller.Controller {
	t.Helper()
	if opts.Kind == "" {
		opts.Kind = api.KindNode
	}
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff = 20 * time.Millisecond
	}
	c := controller.New(st, rec, opts)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

// helloDeploymentFor is a minimal deployment of repo on node n1.
func helloDeploymentFor(name, repo string) *api.Deployment {
	d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment}, Metadata: api.ObjectMeta{Name: name},
		Spec: api.DeploymentSpec{Source: api.Source{Repo: repo}, Nodes: []string{"n1"}, Run: api.Run{Command: "x"}}}
	d.Default()
	return d
}

func manifestSource(name, repo string) *api.ManifestSource {
	ms := &api.ManifestSource{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindManifestSource},
		Metadata: api.ObjectMeta{Name: name}, Spec: api.ManifestSourceSpec{Repo: repo, Path: "deploy"}}
	ms.Default()
	return ms
}

func keyring(t *testing.T, s string) *sealed.Keyring {
	t.Helper()
	kr, err := sealed.ParseKeyring(s)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func putSecret(t *testing.T, st store.Store, kr *sealed.Keyring, name string, vals map[string]string) {
	t.Helper()
	s := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindSecret}, Metadata: api.ObjectMeta{Name: name},
		Spec: api.SecretSpec{Sealed: map[string]string{}}}
	for k, v := range vals {
		b, err := kr.Seal([]byte(v), api.SecretAD(name, k))
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.Sealed[k] = base64.StdEncoding.EncodeToString(b)
	}
	if _, err := st.Get(t.Context(), api.KindSecret, name); err == nil {
		if _, err := st.Update(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := st.Create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}

// sudo runs the node's root helper (what the deployment reconciler's
// scripts call).
const sudo = "sudo -n " + nf.SudoHelper
