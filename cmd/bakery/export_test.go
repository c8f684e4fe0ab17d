package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"bakery.dev/bakery/api/store/sealed"
)

// TestExportEveryKind: export writes every kind — ManifestSources too —
// and, with --secrets only, Secrets and webhook secrets (sealed); apply
// and webhook import restore all of it into an empty server holding the
// key, where a push signed with the old webhook secret is accepted.
func TestExportEveryKind(t *testing.T) {
	isolate(t)
	tmp := t.TempDir()
	t.Setenv("BAKERY_ENCRYPTION_KEY", sealed.NewKey())
	url, _, stop := startServerCmd(t, "--data", filepath.Join(tmp, "a"))
	t.Setenv("BAKERY_SERVER", url)
	t.Setenv("BAKERY_TOKEN", readToken(t, filepath.Join(tmp, "a")))
	src := filepath.Join(tmp, "all.yaml")
	writeFile(t, src, `apiVersion: bakery.dev/v1
kind: Node
metadata: {name: web-1}
spec: {address: 127.0.0.1, port: 1}
---
apiVersion: bakery.dev/v1
kind: ManifestSource
metadata: {name: infra}
spec: {repo: /srv/git/infra.git, interval: 1h}
---
apiVersion: bakery.dev/v1
kind: Secret
metadata: {name: db}
spec: {data: {PASSWORD: hunter2-hunter2}}
`)
	must(t, "", "apply", "-f", src)
	out := must(t, "", "webhook", "create", "/srv/git/app.git")
	m := regexp.MustCompile(`Secret:\s+(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("webhook create:\n%s", out)
	}
	secret := m[1]

	plain := must(t, "", "export")
	if !strings.Contains(plain, "kind: ManifestSource") || !strings.Contains(plain, "kind: Node") ||
		strings.Contains(plain, "kind: Secret") || strings.Contains(plain, "bakery-webhook-secret") {
		t.Fatalf("export without --secrets:\n%s", plain)
	}
	exp := filepath.Join(tmp, "backup.yaml")
	must(t, "", "export", "--secrets", "-f", exp)
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	full := string(b)
	if !strings.Contains(full, "kind: Secret") || strings.Count(full, "# bakery-webhook-secret: ") != 1 || strings.Contains(full, secret) {
		t.Fatalf("export --secrets:\n%s", full)
	}
	stop()

	// An empty server with the same key.
	url, _, _ = startServerCmd(t, "--data", filepath.Join(tmp, "b"))
	t.Setenv("BAKERY_SERVER", url)
	t.Setenv("BAKERY_TOKEN", readToken(t, filepath.Join(tmp, "b")))
	must(t, "", "apply", "-f", exp)
	if out := must(t, "", "webhook", "import", "-f", exp); !strings.Contains(out, "webhook secret of /srv/git/app restored") {
		t.Fatalf("webhook import: %s", out)
	}
	if r := bakery(t, "", "webhook", "import", "-f", exp); r.code == 0 || !strings.Contains(r.stderr, "has a webhook secret already") {
		t.Fatalf("import twice: %+v", r)
	}
	if again := must(t, "", "export", "--secrets"); strings.Count(again, "kind: ") != 3 || !strings.Contains(again, "bakery-webhook-secret") {
		t.Fatalf("export after the restore:\n%s", again)
	}
	body := `{"repo":"/srv/git/app","ref":"main","after":"` + strings.Repeat("a", 40) + `"}`
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(body))
	req, _ := http.NewRequest("POST", url+"/api/v1/webhooks/generic", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Bakery-Delivery", "after-restore")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(h.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a push signed with the restored secret: %d", resp.StatusCode)
	}
}
