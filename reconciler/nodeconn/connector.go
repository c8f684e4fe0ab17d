package nodeconn

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"strconv"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/sshexec"
)

// Connector hands out executors for nodes.
type Connector interface {
	// Executor returns the executor for node; via is the jump host node
	// when node.Spec.Via is set.
	Executor(node, via *api.Node) sshexec.Executor
	// HostKey returns the host key accepted for node (pinned or first
	// seen), if a handshake happened.
	HostKey(node, via *api.Node) (string, bool)
	// Forget drops node's connection and first-seen host key.
	Forget(node, via *api.Node)
}

// SSHConnector is the Connector over an sshexec.Pool, with local nodes
// served by Local — only when the server allows local nodes
// (--allow-local-nodes): with Local nil, every command for a local node
// fails with ErrLocalNodesDisabled and nothing runs on this host.
type SSHConnector struct {
	Pool  *sshexec.Pool
	Local sshexec.Executor
}

// ErrLocalNodesDisabled is the error of every command for a local node on
// a server that does not allow them.
var ErrLocalNodesDisabled = errors.New("local nodes run commands on the control plane's own host and this server does not allow them " +
	"(start it with 'bakery server --allow-local-nodes', or BAKERY_ALLOW_LOCAL_NODES=true)")

// refused is the executor of a local node on a server without them.
type refused struct{}

func (refused) Run(context.Context, sshexec.Command) (sshexec.Result, error) {
	return sshexec.Result{}, ErrLocalNodesDisabled
}
func (refused) WriteFile(context.Context, sshexec.File) error { return ErrLocalNodesDisabled }
func (refused) Close() error                                  { return nil }

// Target returns the sshexec target of node (through via when set). The
// host key required is the spec's pinned key, else the one recorded in
// status on first use.
func Target(node, via *api.Node) sshexec.Target {
	t := sshexec.Target{
		Addr:    net.JoinHostPort(node.Spec.Address, strconv.Itoa(node.Spec.Port)),
		User:    node.Spec.User,
		HostKey: PinnedHostKey(node),
	}
	if via != nil {
		v := Target(via, nil)
		t.Via = &v
	}
	return t
}

// PinnedHostKey is the host key Bakery requires of node: spec.hostKey, or
// the key recorded in status at first contact.
func PinnedHostKey(node *api.Node) string {
	if node.Spec.HostKey != "" {
		return node.Spec.HostKey
	}
	return node.Status.HostKey
}

// Executor implements Connector.
func (c SSHConnector) Executor(node, via *api.Node) sshexec.Executor {
	if node.Spec.Local {
		if c.Local == nil {
			return refused{}
		}
		return c.Local
	}
	return c.Pool.Executor(Target(node, via))
}

// HostKey implements Connector.
func (c SSHConnector) HostKey(node, via *api.Node) (string, bool) {
	if node.Spec.Local {
		return "", false
	}
	return c.Pool.HostKey(Target(node, via))
}

// Forget implements Connector.
func (c SSHConnector) Forget(node, via *api.Node) {
	if !node.Spec.Local {
		c.Pool.Forget(Target(node, via))
	}
}

// Fingerprint returns the SHA256 fingerprint of an authorized_keys-format
// key, as ssh-keygen -l prints it ("SHA256:…"), or "" if it cannot be parsed.
func Fingerprint(authorizedKey string) string {
	k, err := sshexec.ParsePublicKey(authorizedKey)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(k.Marshal())
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
