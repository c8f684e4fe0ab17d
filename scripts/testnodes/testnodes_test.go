package testnodes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleJSON = `{
  "stateDir": "/var/tmp/bakery-testnodes",
  "script": "/src/scripts/testnodes.sh",
  "bridgeAddress": "10.77.0.1",
  "privateKey": "/var/tmp/bakery-testnodes/id_ed25519",
  "publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPdGbn2WipuQNhPyKLjvkMB4vgN8DAQhjwBlQKmLE3z2",
  "knownHosts": "/var/tmp/bakery-testnodes/known_hosts",
  "nodes": [
    {"name": "node1", "address": "10.77.0.11", "port": 22, "user": "bakery-agent", "privateKey": "/var/tmp/bakery-testnodes/id_ed25519", "knownHosts": "/var/tmp/bakery-testnodes/known_hosts", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB/XoPSLhpS/k9xQWM+J8tiEBNKN+pUyzsepGjIZW5CT"},
    {"name": "node2", "address": "10.77.0.12", "port": 22, "user": "bakery-agent", "privateKey": "/var/tmp/bakery-testnodes/id_ed25519", "knownHosts": "/var/tmp/bakery-testnodes/known_hosts", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBwYAFXQHmCSAwqGUBwpCqZ2krDtnRGwReky4xK7Y/be"}
  ]
}
`

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nodes.json"), []byte(sampleJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BAKERY_TESTNODES_SCRIPT", "")
	lab, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(lab.Nodes) != 2 || lab.Nodes[1].Name != "node2" || lab.Nodes[1].Addr() != "10.77.0.12:22" ||
		lab.Nodes[0].User != "bakery-agent" || !strings.HasPrefix(lab.Nodes[0].HostKey, "ssh-ed25519 ") ||
		lab.Script != "/src/scripts/testnodes.sh" || lab.BridgeAddress != "10.77.0.1" {
		t.Fatalf("unexpected lab: %+v", lab)
	}
	if got := lab.Node(t, "node1").Address; got != "10.77.0.11" {
		t.Fatalf("node1 address %q", got)
	}
}

func TestLoadRejectsIncompleteNodes(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(sampleJSON, `"port": 22, "user": "bakery-agent", "privateKey": "/var/tmp/bakery-testnodes/id_ed25519", "knownHosts": "/var/tmp/bakery-testnodes/known_hosts", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBwYAFXQHmCSAwqGUBwpCqZ2krDtnRGwReky4xK7Y/be"`, `"port": 22`, 1)
	if err := os.WriteFile(filepath.Join(dir, "nodes.json"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("Load of an incomplete node: err = %v", err)
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Fatal("Load of an empty dir succeeded")
	}
}

func TestStateDirFromEnv(t *testing.T) {
	t.Setenv("BAKERY_TESTNODES", "/x/y")
	if StateDir() != "/x/y" {
		t.Fatal(StateDir())
	}
	t.Setenv("BAKERY_TESTNODES", "")
	t.Setenv("BAKERY_TESTNODES_LAB", "")
	if StateDir() != DefaultStateDir {
		t.Fatal(StateDir())
	}
	t.Setenv("BAKERY_TESTNODES_LAB", "4")
	if StateDir() != DefaultStateDir+"-4" {
		t.Fatal(StateDir())
	}
	t.Setenv("BAKERY_TESTNODES_LAB", "0")
	if StateDir() != DefaultStateDir {
		t.Fatal(StateDir())
	}
}

// recorder is a testing.TB that records Skip/Fatal instead of acting on them.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = true
	r.msg = toString(args)
	panic(r)
}
func (r *recorder) Fatal(args ...any) {
	r.failed = true
	r.msg = toString(args)
	panic(r)
}

func toString(args []any) string {
	var b strings.Builder
	for _, a := range args {
		if s, ok := a.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

func requireOutcome(t *testing.T) *recorder {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil && v != r {
				panic(v)
			}
		}()
		Require(r)
	}()
	return r
}

// A missing lab skips locally and fails in CI: end-to-end tests must not pass
// in CI by not running.
func TestRequireWithoutLab(t *testing.T) {
	t.Setenv("BAKERY_TESTNODES", t.TempDir())
	t.Setenv("CI", "")
	if r := requireOutcome(t); !r.skipped || r.failed || !strings.Contains(r.msg, "testnodes.sh up") {
		t.Fatalf("locally: skipped=%v failed=%v msg=%q", r.skipped, r.failed, r.msg)
	}
	t.Setenv("CI", "true")
	if r := requireOutcome(t); !r.failed || r.skipped {
		t.Fatalf("in CI: skipped=%v failed=%v msg=%q", r.skipped, r.failed, r.msg)
	}
}
