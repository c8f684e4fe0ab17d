// Package simnode simulates many nodes for the scale benchmarks: each is an
// in-process SSH server (golang.org/x/crypto/ssh server side) on its own
// loopback port that speaks sshexec's protocol (the bootstrap command, the
// framed script on stdin) and answers Bakery's observe scripts the way a
// real node would, from canned text, without running a shell. It knows
// the scripts by name: the BAKERY_SCRIPT variable every reconciler/nodescript
// command carries (nodescript.ObserveNode.Name, nodescript.ObserveApp.Name).
//
// It measures the control plane, not the nodes: a real node spends a few
// milliseconds running the observe script in sh, which is the node's cost
// and runs in parallel on every node; here that costs nothing, so what the
// benchmarks time is the control plane's own work (SSH crypto, framing,
// parsing, planning, store writes). Running hundreds of real sshd (or
// network-namespace hosts) on a 2-core machine would measure sshd and sh
// start-up competing with the control plane for the same cores instead.
//
// It is for benchmarks and tests only; it is no node implementation.
package simnode

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"bakery.dev/bakery/reconciler/nodescript"
)

// NodeObservation is what a simulated node prints for the node observe
// script.
const NodeObservation = `ready=bakery-ready
kernel=Linux 6.1.0-sim
os=Debian GNU/Linux 12 (bookworm)
tool=curl
tool=git
tool=nginx
tool=systemctl
bakery_bytes=1048576
fs_bytes=107374182400
free_bytes=53687091200
`

// Node is one simulated node.
type Node struct {
	Addr    string
	HostKey string // authorized_keys format

	ln     net.Listener
	cfg    *ssh.ServerConfig
	apps   atomic.Pointer[map[string]string]
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
	// Commands counts the commands answered.
	Commands atomic.Int64
}

// Start serves a simulated node on a free loopback port, accepting the
// client key authorized (authorized_keys format).
func Start(authorized string) (*Node, error) {
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorized))
	if err != nil {
		return nil, fmt.Errorf("simnode: client key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(want.Marshal()) {
			return nil, nil
		}
		return nil, fmt.Errorf("simnode: unknown key")
	}}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &Node{Addr: ln.Addr().String(), HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))),
		ln: ln, cfg: cfg, conns: map[net.Conn]bool{}}
	empty := map[string]string{}
	n.apps.Store(&empty)
	n.wg.Add(1)
	go n.serve()
	return n, nil
}

// SetApps sets what the node prints for the app observe script, per app
// name (apps not in the map look never deployed).
func (n *Node) SetApps(apps map[string]string) { n.apps.Store(&apps) }

// Port returns the node's TCP port.
func (n *Node) Port() int {
	_, p, _ := net.SplitHostPort(n.Addr)
	v, _ := strconv.Atoi(p)
	return v
}

// Close stops the node and drops its connections.
func (n *Node) Close() {
	n.mu.Lock()
	n.closed = true
	n.ln.Close()
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.wg.Wait()
}

func (n *Node) serve() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			c.Close()
			return
		}
		n.conns[c] = true
		n.wg.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.wg.Done()
			n.handle(c)
			n.mu.Lock()
			delete(n.conns, c)
			n.mu.Unlock()
		}()
	}
}

func (n *Node) handle(c net.Conn) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, n.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go n.session(ch, creqs)
	}
}

// session answers one exec request: it reads the framed script from
// stdin and prints the canned answer. stdin stays open (sshexec keeps it
// open for its watcher), so only the frame is read.
func (n *Node) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	started := false
	for r := range reqs {
		switch r.Type {
		case "exec":
			r.Reply(!started, nil)
			if started {
				continue
			}
			started = true
			go func() {
				out, code := n.answer(ch)
				io.WriteString(ch, out)
				status := make([]byte, 4)
				binary.BigEndian.PutUint32(status, code)
				ch.SendRequest("exit-status", false, status)
				ch.Close()
			}()
		default:
			if r.WantReply {
				r.Reply(r.Type == "env", nil)
			}
		}
	}
}

func (n *Node) answer(ch io.Reader) (string, uint32) {
	br := bufio.NewReader(ch)
	head, err := br.ReadString('\n')
	if err != nil {
		return "", 125
	}
	f := strings.Fields(head)
	if len(f) != 3 || f[0] != "bakery1" {
		return "bakery: bad bootstrap input\n", 125
	}
	size, err := strconv.Atoi(f[2])
	if err != nil {
		return "", 125
	}
	var code strings.Builder
	switch f[1] {
	case "r":
		for i := 0; i < size; i++ {
			l, err := br.ReadString('\n')
			if err != nil {
				return "", 125
			}
			code.WriteString(l)
		}
	case "h":
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", 125
		}
		code.Write(b)
	default:
		return "", 125
	}
	n.Commands.Add(1)
	script := code.String()
	switch envValue(script, nodescript.EnvScript) {
	case nodescript.ObserveNode.Name:
		return NodeObservation, 0
	case nodescript.ObserveApp.Name:
		return (*n.apps.Load())[envValue(script, "APP")], 0
	}
	return "simnode: this simulated node only answers observe scripts\n", 1
}

// envValue returns the value of "export NAME=value" in the framed code
// (sshexec quotes values in single quotes when they need it).
func envValue(code, name string) string {
	for _, l := range strings.Split(code, "\n") {
		v, ok := strings.CutPrefix(l, "export "+name+"=")
		if !ok {
			continue
		}
		if strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") && len(v) >= 2 {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
		}
		return v
	}
	return ""
}
