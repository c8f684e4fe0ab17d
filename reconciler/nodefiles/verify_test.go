package nodefiles

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifySlots and verifySites are rendered and checked by the real tools
// (the cheap part of the fuzz targets' promise, kept out of the fuzz loop).
var (
	verifySlots = []Slot{
		{App: "hello", Slot: Blue, Release: fuzzRelease, Port: 20000},
		{App: strings.Repeat("a", 63), Slot: Green, Release: strings.Repeat("f", 64), Port: 65535, StopTimeoutSec: MaxStopTimeout},
		{App: "0", Slot: Green, Release: fuzzRelease, Port: 1, StopTimeoutSec: 1},
	}
	verifySites = []Site{
		{App: "hello", Slot: Blue, Port: 20000},
		{App: "web", Slot: Green, Hosts: []string{"a.example.test", "*.b.example.test", "localhost"}, Port: 20001, ListenPort: 8080},
		{App: "web", Slot: Green, Hosts: []string{"a.example.test", "b.example.test"}, Port: 20001, TLS: true},
		{App: "web", Slot: Blue, Hosts: []string{"a.example.test", "b.example.test"}, Port: 1, TLS: true, CertHosts: []string{"b.example.test", "a.example.test"}, TLSPort: 8443},
	}
)

// TestUnitsVerify: every unit of the table passes `systemd-analyze verify`
// without a word (an unknown or mis-parsed key is a warning there).
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		skipOrFail(t, "systemd-analyze not installed (Debian package systemd)")
	}
	dir := t.TempDir()
	for _, s := range verifySlots {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, UnitName(s.App, s.Slot))
		if err := os.WriteFile(p, []byte(Unit(s)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", p).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", p, err, out)
		}
	}
}

// TestSitesVerify: every site of the table passes `nginx -t` inside a
// wrapper configuration (paths of logs and certificates moved into a
// temporary directory, which holds a throwaway certificate per host).
func TestSitesVerify(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/nginx"); err != nil {
			skipOrFail(t, "nginx not installed (Debian package nginx-light)")
		}
		nginx = "/usr/sbin/nginx"
	}
	for i, s := range verifySites {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		site := NginxSite(s)
		site = strings.ReplaceAll(site, "/etc/letsencrypt/live/", dir+"/live/")
		site = strings.ReplaceAll(site, AccessLogDir+"/", dir+"/")
		for _, h := range s.CertHosts {
			writeCert(t, filepath.Join(dir, "live", h))
		}
		// Ports above 1024 with an offset, so that a test as non-root works.
		conf := "daemon off;\npid " + dir + "/nginx.pid;\nerror_log " + dir + "/error.log;\nevents {}\nhttp {\n" +
			"access_log off;\nclient_body_temp_path " + dir + ";\nproxy_temp_path " + dir + ";\nfastcgi_temp_path " + dir + ";\n" +
			"uwsgi_temp_path " + dir + ";\nscgi_temp_path " + dir + ";\ninclude " + dir + "/site.conf;\n}\n"
		if err := os.WriteFile(filepath.Join(dir, "site.conf"), []byte(site), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(nginx, "-t", "-q", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput()
		if err != nil {
			t.Errorf("site %d: nginx -t: %v\n%s\n%s", i, err, out, site)
		}
	}
}

// writeCert writes a self-signed fullchain.pem and privkey.pem into dir.
func writeCert(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: filepath.Base(dir)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{filepath.Base(dir)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{"fullchain.pem": {Type: "CERTIFICATE", Bytes: der}, "privkey.pem": {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// skipOrFail skips the test, or fails it under CI=true: CI installs what
// these checks need (scripts/install-test-deps.sh), so a missing tool
// there is an error, not a reason to check nothing.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
