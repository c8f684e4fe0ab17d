package simnode

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// ChildEnv, when set, makes a test binary whose TestMain calls ChildMain
// serve simulated nodes instead of running tests (see Spawn).
const ChildEnv = "BAKERY_SIMNODE_CHILD"

// Config is what Spawn asks the child for.
type Config struct {
	// Authorized is the client key the nodes accept (authorized_keys).
	Authorized string `json:"authorized"`
	// Apps holds, per node, the app observe answers (SetApps); its
	// length is the number of nodes.
	Apps []map[string]string `json:"apps"`
}

// Endpoint is one simulated node as the child reports it.
type Endpoint struct {
	Addr    string `json:"addr"`
	Port    int    `json:"port"`
	HostKey string `json:"hostKey"`
}

// Fleet is a child process serving simulated nodes, so that their CPU
// time and memory are not counted as the control plane's.
type Fleet struct {
	Nodes []Endpoint
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// Spawn starts the test binary exe (os.Args[0]) as a child serving the
// nodes of cfg. The binary's TestMain must call ChildMain when ChildEnv is
// set.
func Spawn(exe string, cfg Config) (*Fleet, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &Fleet{cmd: cmd, stdin: in}
	if err := json.NewEncoder(in).Encode(cfg); err != nil {
		f.Close()
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("simnode: child: %w", err)
	}
	if err := json.Unmarshal(line, &f.Nodes); err != nil {
		f.Close()
		return nil, fmt.Errorf("simnode: child: %w", err)
	}
	return f, nil
}

// Close ends the child (it stops when its stdin closes).
func (f *Fleet) Close() error {
	f.stdin.Close()
	return f.cmd.Wait()
}

// ChildMain serves the nodes Spawn asked for until stdin closes; it
// returns the process exit code.
func ChildMain(stdin io.Reader, stdout io.Writer) int {
	r := bufio.NewReader(stdin)
	var cfg Config
	line, err := r.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "simnode child:", err)
		return 2
	}
	var nodes []*Node
	var eps []Endpoint
	for _, apps := range cfg.Apps {
		n, err := Start(cfg.Authorized)
		if err != nil {
			fmt.Fprintln(os.Stderr, "simnode child:", err)
			return 2
		}
		n.SetApps(apps)
		nodes = append(nodes, n)
		eps = append(eps, Endpoint{Addr: n.Addr, Port: n.Port(), HostKey: n.HostKey})
	}
	if err := json.NewEncoder(stdout).Encode(eps); err != nil {
		return 2
	}
	io.Copy(io.Discard, r)
	for _, n := range nodes {
		n.Close()
	}
	return 0
}
