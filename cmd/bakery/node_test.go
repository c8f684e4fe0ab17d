package main

import (
	"net/http"
	"strings"
	"testing"
)

func TestNodeCommands(t *testing.T) {
	e := newTestEnv(t, true)
	dir := t.TempDir()
	writeFile(t, dir+"/nodes.yaml", `apiVersion: bakery.dev/v1
kind: Node
metadata: {name: self}
spec: {local: true}
---
apiVersion: bakery.dev/v1
kind: Node
metadata: {name: far}
spec: {address: 127.0.0.1, port: 1}
`)
	must(t, "", "apply", "-f", dir+"/nodes.yaml")

	// bootstrap-command: one line with the server's installer URL and the
	// control plane's public key.
	line := strings.TrimSpace(must(t, "", "node", "bootstrap-command", "far"))
	if !strings.HasPrefix(line, "curl -fsSL "+e.url+"/install-node-agent.sh | sudo bash -s -- --key 'ssh-ed25519 AAAA") {
		t.Fatalf("bootstrap command %q", line)
	}
	// The installer it names is served without a token.
	resp, err := http.Get(e.url + "/install-node-agent.sh")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "shellscript") {
		t.Fatalf("installer: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if r := bakery(t, "", "node", "bootstrap-command", "missing"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("bootstrap of a missing node: exit %d, %s", r.code, r.stderr)
	}

	// verify: a local node is reached through the local executor.
	out := must(t, "", "node", "verify", "self")
	for _, want := range []string{"node/self", "reachable:    true", "reachable:    True (Connected)", "disk:"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	// An unreachable node: exit 1, the reason printed.
	r := bakery(t, "", "node", "verify", "far")
	if r.code != 1 || !strings.Contains(r.stdout, "Unreachable") {
		t.Fatalf("verify unreachable: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// The result is in the node's status for get to show.
	tbl := must(t, "", "get", "nodes")
	if !strings.Contains(tbl, "far") || !strings.Contains(tbl, "False") {
		t.Fatalf("get nodes after verify:\n%s", tbl)
	}
}
