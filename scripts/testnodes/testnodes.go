// Package testnodes gives Go tests access to the real Bakery test nodes that
// scripts/testnodes.sh boots on the test machine: Debian roots with systemd as
// PID 1 (systemd-nspawn), each in its own network namespace on the host bridge
// 10.77.0.1/24, set up by scripts/install-node-agent.sh and reached over real
// SSH as bakery-agent with strict host key checking.
//
// Start a lab with `scripts/testnodes.sh up 3` (as root); the script writes
// <state>/nodes.json, which Require reads. The state directory is
// $BAKERY_TESTNODES, or /var/tmp/bakery-testnodes by default.
//
// Without a lab, Require skips the test with a message — except in CI (env
// CI=true), where a missing lab is a test failure: end-to-end tests must never
// pass silently by not running.
//
// Shared nodes (nodes.json "nodes") are used by tests of many packages at the
// same time: a test that powers a node off or changes its host key must use a
// private node from Scratch instead.
//
// This package only uses the standard library and the OpenSSH client binary; it
// imports nothing of Bakery's.
package testnodes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DefaultStateDir is where scripts/testnodes.sh keeps its state unless
// BAKERY_TESTNODES says otherwise.
const DefaultStateDir = "/var/tmp/bakery-testnodes"

// CommandTimeout bounds every SSH command and script call made by this package.
var CommandTimeout = 2 * time.Minute

// Node is one test node as described in nodes.json.
type Node struct {
	Name       string `json:"name"`
	Address    string `json:"address"` // IPv4 address on the lab bridge
	Port       int    `json:"port"`
	User       string `json:"user"`       // bakery-agent
	PrivateKey string `json:"privateKey"` // path of the control plane's private key (OpenSSH format)
	KnownHosts string `json:"knownHosts"` // path of a known_hosts file pinning HostKey
	HostKey    string `json:"hostKey"`    // pinned host public key, "ssh-ed25519 AAAA..."
}

// Addr returns "address:port".
func (n Node) Addr() string { return n.Address + ":" + strconv.Itoa(n.Port) }

// Lab is the running set of test nodes (the content of nodes.json).
type Lab struct {
	StateDir      string `json:"stateDir"`
	Script        string `json:"script"`        // absolute path of testnodes.sh
	BridgeAddress string `json:"bridgeAddress"` // the host's address as seen from the nodes
	PrivateKey    string `json:"privateKey"`
	PublicKey     string `json:"publicKey"`
	KnownHosts    string `json:"knownHosts"`
	Nodes         []Node `json:"nodes"`
}

// StateDir returns $BAKERY_TESTNODES, or the state directory of lab
// $BAKERY_TESTNODES_LAB (DefaultStateDir-N for N in 1..9), or DefaultStateDir.
func StateDir() string {
	if d := os.Getenv("BAKERY_TESTNODES"); d != "" {
		return d
	}
	if l := os.Getenv("BAKERY_TESTNODES_LAB"); len(l) == 1 && l >= "1" && l <= "9" {
		return DefaultStateDir + "-" + l
	}
	return DefaultStateDir
}

// Load reads a lab description (nodes.json) from the given state directory.
func Load(stateDir string) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "nodes.json"))
	if err != nil {
		return nil, err
	}
	var lab Lab
	if err := json.Unmarshal(b, &lab); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(stateDir, "nodes.json"), err)
	}
	if len(lab.Nodes) == 0 {
		return nil, fmt.Errorf("%s: no nodes", filepath.Join(stateDir, "nodes.json"))
	}
	for i, n := range lab.Nodes {
		if n.Name == "" || n.Address == "" || n.Port == 0 || n.User == "" || n.PrivateKey == "" || n.KnownHosts == "" || n.HostKey == "" {
			return nil, fmt.Errorf("nodes.json: node %d is incomplete: %+v", i, n)
		}
	}
	if s := os.Getenv("BAKERY_TESTNODES_SCRIPT"); s != "" {
		lab.Script = s
	}
	return &lab, nil
}

// InCI reports whether the tests run in CI (env CI=true or CI=1).
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Require returns the running lab. Without one it skips the test, or fails it
// in CI.
func Require(t testing.TB) *Lab {
	t.Helper()
	lab, err := Load(StateDir())
	if err != nil {
		msg := fmt.Sprintf("no test-node lab (%v): start one with `sudo scripts/testnodes.sh up 3` (state dir: $BAKERY_TESTNODES, default %s)", err, DefaultStateDir)
		if InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return lab
}

// RequireNodes returns the first n shared nodes, skipping (failing in CI) the
// test when the lab has fewer.
func RequireNodes(t testing.TB, n int) []Node {
	t.Helper()
	lab := Require(t)
	if len(lab.Nodes) < n {
		msg := fmt.Sprintf("test needs %d test nodes, the lab has %d (run `scripts/testnodes.sh up %d`)", n, len(lab.Nodes), n)
		if InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return lab.Nodes[:n]
}

// Node returns the shared node with the given name, failing the test if there
// is none.
func (l *Lab) Node(t testing.TB, name string) Node {
	t.Helper()
	for _, n := range l.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no test node %q in the lab (%d nodes)", name, len(l.Nodes))
	return Node{}
}

// sshArgs are the OpenSSH client options used for every connection: key only,
// strict host key checking against the node's known_hosts, no agent, no
// multiplexing, no user or system config.
func sshArgs(n Node) []string {
	return []string{
		"-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + n.KnownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "ConnectTimeout=5",
		"-o", "LogLevel=ERROR",
		"-o", "ControlMaster=no",
		"-o", "ControlPath=none",
		"-i", n.PrivateKey,
		"-p", strconv.Itoa(n.Port),
		"-l", n.User,
		n.Address,
	}
}

// SSHArgs returns the arguments of the ssh binary (without "ssh" itself and
// without the remote command) for reaching n the way this package does.
func SSHArgs(n Node) []string { return sshArgs(n) }

// SSH runs a shell command on the node as its user through the OpenSSH client
// and returns its stdout. A non-zero exit status, a connection failure or a
// host key mismatch is an error whose text carries the exit status and stderr.
func SSH(t testing.TB, n Node, cmd string) (string, error) {
	t.Helper()
	return SSHInput(t, n, cmd, nil)
}

// SSHInput is SSH with the given data as the command's stdin.
func SSHInput(t testing.TB, n Node, cmd string, stdin []byte) (string, error) {
	t.Helper()
	args := append(sshArgs(n), "--", cmd)
	return run(stdin, "ssh", args...)
}

// ExitCode returns the exit status carried by an error from SSH, SSHInput, or
// Exec, or -1 if the error is not an exit status (255 is also what ssh uses for
// its own failures).
func ExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Exec runs cmd (a shell command) as root inside the booted node through
// `testnodes.sh exec` (nsenter, not SSH) and returns its stdout.
func Exec(t testing.TB, name, cmd string) (string, error) {
	t.Helper()
	return script(t, "exec", name, "sh", "-c", cmd)
}

// ExecInput is Exec with the given data as the command's stdin.
func ExecInput(t testing.TB, name, cmd string, stdin []byte) (string, error) {
	t.Helper()
	return scriptInput(t, stdin, "exec", name, "sh", "-c", cmd)
}

// Stop powers the node off cleanly; its disk state is kept. Use it on a
// Scratch node.
func Stop(t testing.TB, name string) {
	t.Helper()
	if out, err := script(t, "stop", name); err != nil {
		t.Fatalf("testnodes.sh stop %s: %v\n%s", name, err, out)
	}
}

// Start boots a stopped node again and waits until SSH works.
func Start(t testing.TB, name string) {
	t.Helper()
	if out, err := script(t, "start", name); err != nil {
		t.Fatalf("testnodes.sh start %s: %v\n%s", name, err, out)
	}
}

// RotateHostKey gives the node a new sshd host key without re-pinning it, so
// that strict SSH to it fails with a host key mismatch until TrustHostKey. It
// returns the new public key ("ssh-ed25519 AAAA..."). Use it on a Scratch node.
func RotateHostKey(t testing.TB, name string) string {
	t.Helper()
	out, err := script(t, "rotate-hostkey", name)
	if err != nil {
		t.Fatalf("testnodes.sh rotate-hostkey %s: %v\n%s", name, err, out)
	}
	return strings.TrimSpace(out)
}

// TrustHostKey pins the node's current host key (known_hosts, nodes.json) and
// returns it ("ssh-ed25519 AAAA...").
func TrustHostKey(t testing.TB, name string) string {
	t.Helper()
	out, err := script(t, "trust-hostkey", name)
	if err != nil {
		t.Fatalf("testnodes.sh trust-hostkey %s: %v\n%s", name, err, out)
	}
	return strings.TrimSpace(out)
}

// Scratch boots a private extra node for this test (not shared with other
// tests) and removes it when the test ends.
func Scratch(t testing.TB) Node {
	t.Helper()
	out, err := script(t, "add")
	if err != nil {
		t.Fatalf("testnodes.sh add: %v\n%s", err, out)
	}
	var n Node
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &n); err != nil {
		t.Fatalf("testnodes.sh add printed %q: %v", out, err)
	}
	t.Cleanup(func() {
		if out, err := script(t, "remove", n.Name); err != nil {
			t.Errorf("testnodes.sh remove %s: %v\n%s", n.Name, err, out)
		}
	})
	return n
}

// script runs testnodes.sh with the given arguments and returns its stdout.
func script(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return scriptInput(t, nil, args...)
}

func scriptInput(t testing.TB, stdin []byte, args ...string) (string, error) {
	t.Helper()
	lab := Require(t)
	if lab.Script == "" {
		return "", errors.New("nodes.json names no script; set BAKERY_TESTNODES_SCRIPT")
	}
	return run(stdin, "bash", append([]string{lab.Script}, args...)...)
}

func run(stdin []byte, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	} else {
		cmd.Stdin = strings.NewReader("") // never the test's own stdin
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %s: %w", CommandTimeout, err)
		}
		return stdout.String(), &CmdError{Args: append([]string{name}, args...), Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.String(), nil
}

// CmdError is the error of a failed ssh or testnodes.sh call.
type CmdError struct {
	Args   []string
	Stderr string
	Err    error // usually *exec.ExitError
}

func (e *CmdError) Error() string {
	last := e.Args[len(e.Args)-1]
	return fmt.Sprintf("%s … %q: %v: %s", e.Args[0], last, e.Err, e.Stderr)
}

func (e *CmdError) Unwrap() error { return e.Err }
