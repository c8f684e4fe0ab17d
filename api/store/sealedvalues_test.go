package store_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"bakery.dev/bakery/api/store"
)

// sealers are the files allowed to call a keyring's Seal, each for a kind
// of sealed value in the registry (api/store/sealedvalues.go). A new place
// that seals something makes TestEverySealIsRegistered fail: register its
// kind in store.SealedSettings (so that reencrypt reseals it), seal through
// that SealedSetting, and only then list the file here if it must call
// Seal itself.
var sealers = map[string]string{
	"api/store/sealed/sealed.go":      "the mechanism itself (Reseal)",
	"api/store/sealedvalues.go":       "SealedSetting.Seal: every sealed setting",
	"api/server/secrets.go":           "Secret values (api.SecretAD), resealed by store.ResealAll",
	"reconciler/nodeconn/identity.go": "the SSH identity, bound to store.SSHIdentitySetting.AD",
}

var sealCall = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*\.Seal\(`)

// TestEverySealIsRegistered: every call that seals a value with the
// keyring is in a file of sealers or goes through a SealedSetting of the
// registry — so a key rotation cannot forget a kind of sealed value.
func TestEverySealIsRegistered(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n != ".." && strings.HasPrefix(n, ".") || n == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range sealCall.FindAllString(line, -1) {
				if _, ok := sealers[rel]; ok || strings.HasSuffix(m, "Setting.Seal(") || m == "aead.Seal(" {
					continue
				}
				t.Errorf("%s:%d: %s seals a value outside the registry of sealed values (see sealers in this test)", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSealedSettingNames: the kinds' setting names never overlap, and
// other settings (the webhook delivery log) are not taken for sealed
// ones.
func TestSealedSettingNames(t *testing.T) {
	for _, k := range store.SealedSettings {
		name := k.Name("some id")
		if err := store.CheckSettingName(name); err != nil {
			t.Errorf("%s: %v", k.What, err)
		}
		for _, o := range store.SealedSettings {
			if o.What != k.What && o.Matches(name) {
				t.Errorf("%s's setting %s matches %s too", k.What, name, o.What)
			}
		}
		if !k.Matches(name) {
			t.Errorf("%s does not match its own setting %s", k.What, name)
		}
	}
	for _, other := range []string{"webhook-deliveries", "analytics-web", "ssh-identity-old"} {
		for _, k := range store.SealedSettings {
			if k.Matches(other) {
				t.Errorf("%s matches the setting %s", k.What, other)
			}
		}
	}
}
