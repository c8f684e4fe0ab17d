package nodescript

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/sshexec"
)

// The parser tests moved here from reconciler (nodes_test.go,
// docker_test.go, tls_test.go) and reconciler/source (node_test.go).

func TestParseNodeObservation(t *testing.T) {
	out := "ready=bakery-ready\nkernel=Linux 6.1.0\nos=Debian GNU/Linux 12 (bookworm)\ntool=systemctl\ntool=git\n" +
		"bakery_bytes=4096\nfs_bytes=1000000\nfree_bytes=500000\nnoise line\n"
	got, err := ParseNodeObservation(out)
	if err != nil {
		t.Fatal(err)
	}
	want := NodeObservation{OS: "Debian GNU/Linux 12 (bookworm)", Kernel: "Linux 6.1.0", Tools: []string{"git", "systemctl"},
		Disk: &api.DiskUsage{BakeryBytes: 4096, FilesystemBytes: 1000000, FreeBytes: 500000}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if m := got.Missing([]string{"git", "nginx", "systemctl", "docker"}); !cmp.Equal(m, []string{"nginx", "docker"}) {
		t.Fatalf("missing = %v", m)
	}
	if _, err := ParseNodeObservation("kernel=x\n"); err == nil {
		t.Fatal("output without bakery-ready accepted")
	}
}

func TestParseDockerObservation(t *testing.T) {
	c1, c2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	out := `state {"version": 1, "app": "web", "active": "green", "dockerized": true, "slots": {"blue": {"commit": "` + c1 + `", "release": "` + c1 + `-h", "port": 20000}, "green": {"commit": "` + c2 + `", "release": "` + c2 + `-h", "port": 20001}}}
unit blue inactive
unit green inactive
site -
release ` + c1 + `-h h
release ` + c2 + `-h h
docker
image ` + c2 + `-h
container /bakery-web-blue exited - bakery/web:` + c1 + `-h ` + c1 + ` 3
container /bakery-web-green running healthy bakery/web:` + c2 + `-h ` + c2 + ` 4
`
	o, err := ParseAppObservation(out)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Docker {
		t.Fatal("docker section not seen")
	}
	if diff := cmp.Diff(map[string]string{"blue": "exited", "green": "active"}, o.Units); diff != "" {
		t.Fatalf("units (-want +got):\n%s", diff)
	}
	// blue's image is gone: its release counts as not built.
	if diff := cmp.Diff(map[string]string{c1 + "-h": "", c2 + "-h": "h"}, o.Releases); diff != "" {
		t.Fatalf("releases (-want +got):\n%s", diff)
	}
	if g := o.Containers["green"]; g.Health != "healthy" || g.Revision != "4" || g.Image != "bakery/web:"+c2+"-h" {
		t.Fatalf("green container %+v", g)
	}

	// Drift: the active container removed, or replaced by a stranger, or unhealthy.
	for _, tc := range []struct{ line, want string }{
		{"", "absent"},
		{"container /bakery-web-green running - bakery/web:x " + c1 + " 4\n", "replaced"},
		{"container /bakery-web-green running unhealthy bakery/web:x " + c2 + " 4\n", "unhealthy"},
		{"container /bakery-web-green restarting - bakery/web:x " + c2 + " 4\n", "activating"},
	} {
		cut := out[:strings.Index(out, "container /bakery-web-green")] + tc.line
		o, err := ParseAppObservation(cut)
		if err != nil {
			t.Fatal(err)
		}
		if o.Units["green"] != tc.want {
			t.Errorf("%q: green is %q, want %q", tc.line, o.Units["green"], tc.want)
		}
	}

	if _, err := ParseAppObservation("docker-error permission denied while trying to connect to the Docker daemon socket\n"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("docker error: %v", err)
	}
	if _, err := ParseAppObservation("container /bakery-web-blue exited\n"); err == nil {
		t.Fatal("a short container line was accepted")
	}
}

func TestObserveCertificates(t *testing.T) {
	o, err := ParseAppObservation("unit blue active\ncert a.example.test 1803533847 4BB424659C012AA1\ncert b.example.test -\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Cert{"a.example.test": {NotAfter: time.Unix(1803533847, 0).UTC(), Serial: "4BB424659C012AA1"}}
	if diff := cmp.Diff(want, o.Certs); diff != "" {
		t.Fatalf("certs (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"cert a.example.test soon XX\n", "cert a.example.test\n", "certerr the helper cannot\n"} {
		if _, err := ParseAppObservation(bad); err == nil {
			t.Errorf("ParseAppObservation(%q) accepted", bad)
		}
	}
}

func TestCertbotDetail(t *testing.T) {
	base := errors.New("sshexec: exit status 1")
	res := sshexec.Result{
		Stdout: []byte("Requesting a certificate for a.example.test\n\nCertbot failed to authenticate some domains (authenticator: webroot).\n  Domain: a.example.test\n  Type:   dns\n  Detail: DNS problem: NXDOMAIN looking up A for a.example.test\n"),
		Stderr: []byte("Some challenges have failed.\nAsk for help or search for solutions at https://community.letsencrypt.org.\n"),
	}
	err := WithCertbotDetail(base, res)
	if !errors.Is(err, base) || !strings.HasSuffix(err.Error(), ": DNS problem: NXDOMAIN looking up A for a.example.test") {
		t.Errorf("with a Detail line: %v", err)
	}
	res.Stdout = nil
	if err := WithCertbotDetail(base, res); !strings.HasSuffix(err.Error(), ": Some challenges have failed.") {
		t.Errorf("without: %v", err)
	}
	if err := WithCertbotDetail(base, sshexec.Result{}); err != base {
		t.Errorf("no output: %v", err)
	}
}

func TestParseHaves(t *testing.T) {
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	got, err := ParseHaves("\n" + a + "\n" + b + "\r\n" + a + "\n\n")
	if err != nil || !slices.Equal(got, []string{a, b}) {
		t.Errorf("ParseHaves = %q, %v", got, err)
	}
	if got, err := ParseHaves(""); err != nil || len(got) != 0 {
		t.Errorf("ParseHaves(\"\") = %q, %v", got, err)
	}
	if _, err := ParseHaves(a + "\nfatal: not a git repository\n"); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage: err = %v, want ErrInvalid", err)
	}
}

func TestFindCert(t *testing.T) {
	out := "bakery: requesting a certificate\ncert b.test -\ncert a.test 1803533847 4BB4\n"
	tests := []struct {
		host    string
		want    Cert
		wantErr string
	}{
		{"a.test", Cert{NotAfter: time.Unix(1803533847, 0).UTC(), Serial: "4BB4"}, ""},
		{"b.test", Cert{}, "no certificate for b.test"},
		{"c.test", Cert{}, "did not report the certificate of c.test"},
	}
	for _, tt := range tests {
		got, err := FindCert(out, tt.host)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.host, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v", tt.host, got, err)
		}
	}
}
