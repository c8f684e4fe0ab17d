//go:build e2e

package manager

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/controller"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/scripts/testnodes"
)

// Helpers only the end-to-end tests use.

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

// labKey reads the lab's private key (the control plane's identity).
func labKey(t *testing.T, lab *testnodes.Lab) []byte {
	t.Helper()
	key, err := os.ReadFile(lab.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// createLabNodes writes the lab's nodes into st as Nodes, their host keys
// pinned.
func createLabNodes(t *testing.T, st store.Store, nodes []testnodes.Node) {
	t.Helper()
	for _, n := range nodes {
		nn := labNode(n.Name, n.Address)
		nn.Spec.HostKey = n.HostKey
		if _, err := st.Create(t.Context(), nn); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFirstServed waits (at most 10 s) until every node answers host with
// a body starting with want, after a deployment's first rollout: nginx's
// old workers, which have no server for the new site yet, may accept a
// connection or two until they have handled the reload, and with no old
// slot to send them to they answer from the default server. (A switch
// between slots has no such window: the old workers' config still proxies
// to the old slot, which serves until the drain ends.)
func waitFirstServed(t *testing.T, nodes []testnodes.Node, host, want string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	for _, n := range nodes {
		deadline := time.Now().Add(10 * time.Second)
		for {
			body, err := getAs(client, n.Address, host)
			if err == nil && strings.HasPrefix(body, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("first rollout: %s serves %q, %v; want %q", n.Name, body, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
