package deployment

import (
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/sealed"
)

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

func TestResolveEnv(t *testing.T) {
	st, err := filestore.Open(t.TempDir(), filestore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kr, _ := sealed.ParseKeyring(sealed.NewKey())
	ctx := t.Context()
	putSecret(t, st, kr, "db", map[string]string{"PASSWORD": "pw-1", "USER": "app", "SHARED": "from-db"})
	putSecret(t, st, kr, "api", map[string]string{"SHARED": "from-api", "TOKEN": "tok"})
	spec := &api.DeploymentSpec{Run: api.Run{
		EnvFrom: []api.EnvFromSource{{SecretRef: "db"}, {SecretRef: "api"}},
		Env: []api.EnvVar{{Name: "USER", Value: "literal"},
			{Name: "STRIPE", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "api", Key: "TOKEN"}}}},
	}}
	r, err := resolveEnv(ctx, st, kr, spec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"PASSWORD": "pw-1", "USER": "literal", "SHARED": "from-api", "TOKEN": "tok", "STRIPE": "tok"}
	if len(r.env) != len(want) {
		t.Errorf("env = %v, want %v", r.env, want)
	}
	for k, v := range want {
		if r.env[k] != v {
			t.Errorf("env[%s] = %q, want %q", k, r.env[k], v)
		}
	}
	if strings.Join(r.secret, ",") != "pw-1,from-api,tok,tok" {
		t.Errorf("masked values = %q", r.secret)
	}
	if r.hash == "" || strings.Contains(r.hash, "pw") {
		t.Fatalf("hash %q", r.hash)
	}

	// Sealing the same values again (a re-encryption) keeps the hash; a
	// changed value changes it.
	putSecret(t, st, kr, "db", map[string]string{"PASSWORD": "pw-1", "USER": "app", "SHARED": "from-db"})
	if r2, _ := resolveEnv(ctx, st, kr, spec); r2.hash != r.hash {
		t.Error("resealing the same values changed the hash")
	}
	putSecret(t, st, kr, "db", map[string]string{"PASSWORD": "pw-2", "USER": "app", "SHARED": "from-db"})
	if r3, _ := resolveEnv(ctx, st, kr, spec); r3.hash == r.hash || r3.env["PASSWORD"] != "pw-2" {
		t.Error("a changed value kept the hash")
	}
	// No secrets: no hash, the literal env.
	if r4, err := resolveEnv(ctx, st, nil, &api.DeploymentSpec{Run: api.Run{Env: []api.EnvVar{{Name: "A", Value: "b"}}}}); err != nil || r4.hash != "" || r4.env["A"] != "b" {
		t.Errorf("no secrets: %+v %v", r4, err)
	}

	for _, tc := range []struct {
		spec *api.DeploymentSpec
		kr   *sealed.Keyring
		want string
	}{
		{&api.DeploymentSpec{Run: api.Run{EnvFrom: []api.EnvFromSource{{SecretRef: "nope"}}}}, kr, `secret "nope" does not exist`},
		{&api.DeploymentSpec{Run: api.Run{Env: []api.EnvVar{{Name: "X", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "db", Key: "NOPE"}}}}}}, kr, `secret "db" has no key "NOPE"`},
		{spec, nil, "this server has no encryption key"},
		{spec, mustKeyring(t), "sealed with a key that is not in the keyring"},
	} {
		if _, err := resolveEnv(ctx, st, tc.kr, tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

func mustKeyring(t *testing.T) *sealed.Keyring {
	kr, err := sealed.ParseKeyring(sealed.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
