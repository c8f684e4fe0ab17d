package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/manifests"
)

// canary is a secret value that must never be seen outside the app's
// environment file.
const canary = "canary-7c1f0e9a-not-for-your-eyes"

const secretAppYAML = `apiVersion: bakery.dev/v1
kind: Deployment
metadata:
  name: shop
spec:
  source: {repo: /srv/git/shop.git}
  nodes: [web-1]
  run:
    command: ./shop
    envFrom:
      - secretRef: db
    env:
      - name: STRIPE
        valueFrom:
          secretKeyRef: {name: db, key: TOKEN}
`

// storeKind runs a test on both stores: it returns the server flags and
// a function listing every place the store keeps data, as text, for a
// grep (the data directory's files; the database's tables).
type storeKind struct {
	name  string
	setup func(t *testing.T, data string) (args []string, dump func() string)
}

var storeKinds = []storeKind{
	{"file", func(t *testing.T, data string) ([]string, func() string) {
		return []string{"--data", data}, func() string { return dumpDir(t, data) }
	}},
	{"postgres", func(t *testing.T, data string) ([]string, func() string) {
		if testing.Short() {
			t.Skip("starts PostgreSQL")
		}
		url := pgtest.DatabaseURL(t)
		return []string{"--data", data, "--database-url", url}, func() string { return dumpDB(t, url) + dumpDir(t, data) }
	}},
}

func dumpDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil // a temporary file of the running server
		case err != nil:
			return err
		case d.IsDir() && d.Name() == "mirrors":
			return filepath.SkipDir // git mirrors of app sources
		case d.IsDir():
			return nil
		}
		c, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		b.Write(c)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func dumpDB(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var b strings.Builder
	// Every column of every table, as text.
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		var s *string
		if err := conn.QueryRow(ctx, `SELECT string_agg(t::text, E'\n') FROM `+pgx.Identifier{tb}.Sanitize()+` t`).Scan(&s); err != nil {
			t.Fatalf("dump %s: %v", tb, err)
		}
		if s != nil {
			b.WriteString(*s)
		}
	}
	if !strings.Contains(b.String(), "shop") {
		t.Fatalf("the database dump does not even hold the deployment:\n%.2000s", b.String())
	}
	return b.String()
}

// TestSecrets, on both stores: values are sealed at rest and shown
// nowhere (CLI, API, yaml/json, apply diffs, server log); setting the
// same value again changes nothing; a key rotation (new key first,
// reencrypt, old key dropped) keeps every secret; export --secrets then
// apply restores every spec into an empty store holding the key, and a
// store with another key refuses the sealed values.
func TestSecrets(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			isolate(t)
			tmp := t.TempDir()
			args, dump := sk.setup(t, filepath.Join(tmp, "data"))
			k1, k2 := sealed.NewKey(), sealed.NewKey()
			t.Setenv("BAKERY_ENCRYPTION_KEY", k1)
			t.Setenv("BAKERY_ALLOW_LOCAL_NODES", "true") // nodesYAML has one
			url, stderr, stop := startServerCmd(t, args...)
			token := readToken(t, filepath.Join(tmp, "data"))
			t.Setenv("BAKERY_SERVER", url)
			t.Setenv("BAKERY_TOKEN", token)

			tokFile := filepath.Join(tmp, "token")
			writeFile(t, tokFile, "tok-"+canary)
			out := must(t, "", "secret", "set", "db", "PASSWORD="+canary, "--from-file", "TOKEN="+tokFile)
			wantLines(t, out, "secret/db created (set PASSWORD, TOKEN; keys: PASSWORD, TOKEN)")
			writeFile(t, filepath.Join(tmp, "shop.yaml"), nodesYAML+"---\n"+secretAppYAML)
			must(t, "", "apply", "-f", filepath.Join(tmp, "shop.yaml"))
			gen := func() string {
				return strings.TrimSpace(must(t, "", "get", "secret", "db", "-o", "json"))
			}
			before := gen()
			// The same value again: no new generation (no rollout).
			must(t, "", "secret", "set", "db", "TOKEN=tok-"+canary)
			if r := bakery(t, canary, "secret", "set", "db", "--from-file", "PASSWORD=-"); r.code != 0 {
				t.Fatalf("secret set from stdin: %+v", r)
			}
			if after := gen(); after != before {
				t.Errorf("setting the same values changed the secret:\n%s\n%s", before, after)
			}
			// Everything a user can see.
			var seen strings.Builder
			for _, a := range [][]string{
				{"secret", "get"}, {"secret", "get", "db"}, {"get", "secrets", "-o", "yaml"}, {"get", "secret", "db", "-o", "json"},
				{"get", "secret/db", "deploy/shop", "-o", "wide"}, {"describe", "secret", "db"}, {"export"},
				{"diff", "-f", filepath.Join(tmp, "shop.yaml")},
			} {
				r := bakery(t, "", a...)
				seen.WriteString(r.stdout + r.stderr)
			}
			if !strings.Contains(seen.String(), "PASSWORD") || !strings.Contains(seen.String(), "TOKEN") {
				t.Errorf("the keys are not shown:\n%s", seen.String())
			}
			if strings.Contains(seen.String(), canary) || strings.Contains(seen.String(), "sealed:") {
				t.Errorf("a value or sealed value is shown:\n%s", seen.String())
			}
			if out := must(t, "", "describe", "secret", "db"); !regexp.MustCompile(`Keys:\s+PASSWORD, TOKEN`).MatchString(out) {
				t.Errorf("describe secret:\n%s", out)
			}
			if out := must(t, "", "describe", "deploy", "shop"); !regexp.MustCompile(`Secrets:\s+db`).MatchString(out) {
				t.Errorf("describe deployment:\n%s", out)
			}
			if y := must(t, "", "get", "secret", "db", "-o", "yaml"); !strings.Contains(y, "keys:") || strings.Contains(y, "sealed") {
				t.Errorf("get -o yaml:\n%s", y)
			}
			// Validation with field paths; nothing is applied.
			bad := strings.Replace(secretAppYAML, "{name: db, key: TOKEN}", "{name: db, key: 9x}", 1)
			if r := bakery(t, bad, "apply", "-f", "-"); r.code == 0 || !strings.Contains(r.stderr, "spec.run.env[0].valueFrom.secretKeyRef.key") {
				t.Errorf("bad secretKeyRef: %+v", r)
			}
			if r := bakery(t, "", "secret", "set", "db", "PORT=1"); r.code == 0 || !strings.Contains(r.stderr, "spec.data.PORT") {
				t.Errorf("secret key PORT: %+v", r)
			}

			// Export: sealed, never plain.
			exp := filepath.Join(tmp, "backup.yaml")
			must(t, "", "export", "--secrets", "-f", exp)
			b, err := os.ReadFile(exp)
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(exp); fi.Mode().Perm() != 0o600 {
				t.Errorf("export file mode %v", fi.Mode())
			}
			if strings.Contains(string(b), canary) || !strings.Contains(string(b), "sealed:") {
				t.Fatalf("export --secrets:\n%s", b)
			}
			if strings.Contains(must(t, "", "export"), "kind: Secret") {
				t.Error("export without --secrets holds secrets")
			}

			// Rotation: new key first, reencrypt, drop the old key.
			stop()
			t.Setenv("BAKERY_ENCRYPTION_KEY", k2+","+k1)
			url, stderr2, stop2 := startServerCmd(t, args...)
			t.Setenv("BAKERY_SERVER", url)
			out = must(t, "", "secret", "reencrypt")
			kr2, _ := sealed.ParseKeyring(k2)
			if !strings.Contains(out, "sealed with key "+kr2.KeyID()+": 2 values of 1 secret read, 2 values sealed again") {
				t.Errorf("reencrypt: %q", out)
			}
			if out := must(t, "", "secret", "reencrypt"); !strings.Contains(out, "0 values sealed again") {
				t.Errorf("second reencrypt: %q", out)
			}
			stop2()
			t.Setenv("BAKERY_ENCRYPTION_KEY", k2)
			url, stderr3, stop3 := startServerCmd(t, args...)
			t.Setenv("BAKERY_SERVER", url)
			exp2 := filepath.Join(tmp, "backup2.yaml")
			must(t, "", "export", "--secrets", "-f", exp2)
			vals := openExport(t, exp2, kr2)
			if vals["PASSWORD"] != canary || vals["TOKEN"] != "tok-"+canary {
				t.Errorf("after rotation the secret opens with the new key alone to %q", vals)
			}
			// Nothing at rest holds a value, and every value is sealed
			// with the new key.
			if d := dump(); strings.Contains(d, canary) {
				t.Error("the store holds a secret value in plain text")
			}
			want := exportText(t)
			stop3()

			// Restore into an empty store holding the key: every spec
			// comes back. Into one with another key: refused.
			tmp2 := t.TempDir()
			args2, _ := sk.setup(t, filepath.Join(tmp2, "data"))
			t.Setenv("BAKERY_ENCRYPTION_KEY", k1)
			url, stderr4, stop4 := startServerCmd(t, args2...)
			t.Setenv("BAKERY_SERVER", url)
			t.Setenv("BAKERY_TOKEN", readToken(t, filepath.Join(tmp2, "data")))
			if r := bakery(t, "", "apply", "-f", exp2); r.code == 0 || !strings.Contains(r.stderr, "spec.sealed.PASSWORD: does not open with this server's encryption keys") {
				t.Errorf("apply with the old key only: %+v", r)
			}
			if out := must(t, "", "export", "--secrets"); strings.Contains(out, "kind:") {
				t.Errorf("a refused apply left objects:\n%s", out)
			}
			stop4()
			tmp3 := t.TempDir()
			args3, _ := sk.setup(t, filepath.Join(tmp3, "data"))
			t.Setenv("BAKERY_ENCRYPTION_KEY", k2)
			url, stderr5, _ := startServerCmd(t, args3...)
			t.Setenv("BAKERY_SERVER", url)
			t.Setenv("BAKERY_TOKEN", readToken(t, filepath.Join(tmp3, "data")))
			must(t, "", "apply", "-f", exp2)
			if got := exportText(t); got != want {
				t.Errorf("restored store differs:\n--- before\n%s\n--- restored\n%s", want, got)
			}
			if vals := openExport(t, exp2, kr2); vals["PASSWORD"] != canary {
				t.Error("restored secret does not open")
			}
			for _, l := range []string{stderr(), stderr2(), stderr3(), stderr4(), stderr5()} {
				if strings.Contains(l, canary) || strings.Contains(l, k1) || strings.Contains(l, k2) {
					t.Errorf("the server log shows a secret value or key:\n%s", l)
				}
			}
		})
	}
}

func readToken(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// exportText is the export with secrets, sealed values replaced by what
// they open to (sealed forms differ by nonce).
func exportText(t *testing.T) string {
	t.Helper()
	out := must(t, "", "export", "--secrets")
	objs, err := manifests.DecodeSource("export", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if s, ok := o.(*api.Secret); ok {
			for k := range s.Spec.Sealed {
				s.Spec.Sealed[k] = "x"
			}
		}
	}
	b, err := manifests.Encode(objs...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "kind: Node") || !strings.Contains(string(b), "kind: Deployment") || !strings.Contains(string(b), "kind: Secret") {
		t.Fatalf("export lacks kinds:\n%s", b)
	}
	return string(b)
}

// openExport opens secret db of an export with kr.
func openExport(t *testing.T, file string, kr *sealed.Keyring) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := manifests.DecodeSource(file, b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range objs {
		s, ok := o.(*api.Secret)
		if !ok || s.Metadata.Name != "db" {
			continue
		}
		for k, v := range s.Spec.Sealed {
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := kr.Open(raw, api.SecretAD("db", k))
			if err != nil {
				t.Fatalf("secret db key %s: %v", k, err)
			}
			out[k] = string(pt)
		}
	}
	return out
}
