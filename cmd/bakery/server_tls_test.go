package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestServerACMEFlags(t *testing.T) {
	isolate(t)
	data := filepath.Join(t.TempDir(), "data")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--acme-server", "http://acme.example/dir"}, "--acme-server"},
		{[]string{"--acme-server", "https://acme.example/dir?x=$(id)"}, "--acme-server"},
		{[]string{"--acme-staging", "--acme-server", "https://acme.example/dir"}, "exclude each other"},
		{[]string{"--cert-renew-before", "0s"}, "--cert-renew-before"},
	} {
		r := bakery(t, "", append([]string{"server", "--data", data, "--listen", "127.0.0.1:0"}, c.args...)...)
		if r.code == 0 || !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, c.want) {
			t.Errorf("server %v: %+v, want an error about %s", c.args, r, c.want)
		}
	}
	// Valid values start the server.
	_, stderr, stop := startServerCmd(t, "--data", data, "--acme-staging", "--cert-renew-before", "480h")
	if code := stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr())
	}
	if out := stderr(); !strings.Contains(out, "acme-server=https://acme-staging-v02.api.letsencrypt.org/directory") || !strings.Contains(out, "renew-before=480h") {
		t.Errorf("the ACME settings are not logged:\n%s", out)
	}
}
