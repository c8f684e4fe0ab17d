package nodeconn

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/api/store/pgstore"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/internal/simnode"
	"bakery.dev/bakery/sshexec"
)

func TestMain(m *testing.M) {
	// The scale benchmarks run their simulated nodes in a child process
	// of this binary.
	if os.Getenv(simnode.ChildEnv) != "" {
		os.Exit(simnode.ChildMain(os.Stdin, os.Stdout))
	}
	pgtest.Main(m)
}

func keyring(t *testing.T, s string) *sealed.Keyring {
	t.Helper()
	kr, err := sealed.ParseKeyring(s)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// settingsStore is a store that keeps settings.
type settingsStore interface {
	store.Store
	store.Settings
}

func openFileStore(t *testing.T, dir string) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(dir, filestore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPGStore(t *testing.T, url string) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, url, pgstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func checkIdentity(t *testing.T, id Identity) {
	t.Helper()
	signer, err := sshexec.ParsePrivateKey(id.PrivatePEM)
	if err != nil {
		t.Fatalf("the identity's private key: %v", err)
	}
	if pub := sshexec.FormatPublicKey(signer.PublicKey()); !strings.HasPrefix(id.AuthorizedKey, pub) {
		t.Fatalf("authorized key %q is not the private key's (%q)", id.AuthorizedKey, pub)
	}
}

// testStoredIdentity runs the checks common to both stores on s, whose
// raw stored value raw returns.
func testStoredIdentity(t *testing.T, s settingsStore, raw func() []byte) {
	ctx := t.Context()
	oldKey := sealed.NewKey()
	kr := keyring(t, oldKey)

	first, err := StoredIdentity(ctx, s, kr)
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, first)
	again, err := StoredIdentity(ctx, s, kr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.PrivatePEM, first.PrivatePEM) || again.AuthorizedKey != first.AuthorizedKey {
		t.Fatal("a second call minted another key pair")
	}

	// At rest the key pair is sealed: neither half is in clear.
	b := raw()
	if len(b) == 0 {
		t.Fatal("nothing stored")
	}
	for _, clear := range []string{"PRIVATE KEY", "ssh-ed25519", "privatePEM", strings.Fields(first.AuthorizedKey)[1]} {
		if bytes.Contains(b, []byte(clear)) {
			t.Fatalf("the stored value contains %q in clear", clear)
		}
	}

	// Another key: a clear error naming the variable, and the stored key
	// pair is left alone.
	_, err = StoredIdentity(ctx, s, keyring(t, sealed.NewKey()))
	if !errors.Is(err, sealed.ErrUnknownKey) || !strings.Contains(err.Error(), "BAKERY_ENCRYPTION_KEY") {
		t.Fatalf("wrong key: err = %v, want ErrUnknownKey naming BAKERY_ENCRYPTION_KEY", err)
	}
	if !bytes.Equal(raw(), b) {
		t.Fatal("a server with the wrong key changed the stored identity")
	}
	if _, err := StoredIdentity(ctx, s, nil); err == nil || !strings.Contains(err.Error(), "BAKERY_ENCRYPTION_KEY") {
		t.Fatalf("no key: err = %v", err)
	}

	// Rotation: a keyring with a new key first and the old one after it
	// opens the identity.
	rotated, err := StoredIdentity(ctx, s, keyring(t, sealed.NewKey()+","+oldKey))
	if err != nil {
		t.Fatalf("rotated keyring: %v", err)
	}
	if !bytes.Equal(rotated.PrivatePEM, first.PrivatePEM) {
		t.Fatal("rotated keyring: another key pair")
	}

	// A changed value is reported, never replaced.
	tampered := bytes.Clone(b)
	tampered[len(tampered)-1] ^= 1
	if err := s.PutSetting(ctx, IdentitySetting, tampered); err != nil {
		t.Fatal(err)
	}
	if _, err := StoredIdentity(ctx, s, kr); !errors.Is(err, sealed.ErrTampered) || !strings.Contains(err.Error(), "BAKERY_ENCRYPTION_KEY") {
		t.Fatalf("tampered: err = %v, want ErrTampered naming BAKERY_ENCRYPTION_KEY", err)
	}
	// A value sealed for another purpose does not open as an identity.
	other, _ := kr.Seal([]byte(`{"privatePEM":"x","authorizedKey":"y"}`), []byte("bakery webhook-secret"))
	if err := s.PutSetting(ctx, IdentitySetting, other); err != nil {
		t.Fatal(err)
	}
	if _, err := StoredIdentity(ctx, s, kr); !errors.Is(err, sealed.ErrTampered) {
		t.Fatalf("sealed for another purpose: err = %v, want ErrTampered", err)
	}
}

func TestStoredIdentityFileStore(t *testing.T) {
	dir := t.TempDir()
	s := openFileStore(t, dir)
	testStoredIdentity(t, s, func() []byte {
		b, err := os.ReadFile(filepath.Join(dir, "settings", IdentitySetting))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestStoredIdentityPostgres(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	s := openPGStore(t, url)
	testStoredIdentity(t, s, func() []byte { return rawSetting(t, url) })
}

func rawSetting(t *testing.T, url string) []byte {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var b []byte
	if err := conn.QueryRow(t.Context(), `SELECT value FROM settings WHERE name = $1`, IdentitySetting).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Control planes starting at once on one database mint one key pair
// between them: every one gets the same.
func TestStoredIdentityConcurrentPostgres(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	stores := []*pgstore.Store{openPGStore(t, url), openPGStore(t, url), openPGStore(t, url)}
	kr := keyring(t, sealed.NewKey())
	const n = 8
	ids := make([]Identity, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			ids[i], errs[i] = StoredIdentity(t.Context(), stores[i%len(stores)], kr)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("server %d: %v", i, errs[i])
		}
		if ids[i].AuthorizedKey != ids[0].AuthorizedKey || !bytes.Equal(ids[i].PrivatePEM, ids[0].PrivatePEM) {
			t.Fatalf("servers 0 and %d got different key pairs:\n%s\n%s", i, ids[0].AuthorizedKey, ids[i].AuthorizedKey)
		}
	}
	checkIdentity(t, ids[0])
	if b := rawSetting(t, url); bytes.Contains(b, []byte("PRIVATE KEY")) {
		t.Fatal("the settings table holds the private key in clear")
	}
}

// With the file store the key pair stays a 0600 file under <data>/ssh.
func TestLoadOrCreateIdentity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ssh")
	id, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkIdentity(t, id)
	fi, err := os.Stat(filepath.Join(dir, "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.AuthorizedKey != id.AuthorizedKey || !bytes.Equal(again.PrivatePEM, id.PrivatePEM) {
		t.Fatal("a second call minted another key pair")
	}
}

func TestFingerprint(t *testing.T) {
	_, pub, err := sshexec.GenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(pub)
	if len(fp) != len("SHA256:")+43 {
		t.Fatalf("fingerprint %q", fp)
	}
	if Fingerprint("garbage") != "" {
		t.Fatal("garbage key fingerprinted")
	}
}
