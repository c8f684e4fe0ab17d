package nodescript

import (
	"bufio"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/sshexec"
)

// ObserveNode prints what the node reconciler learns about a node in one
// round trip, one key=value per line; it only reads.
// [ParseNodeObservation] reads its output.
var ObserveNode = define("observe-node", func(struct{}, *call) {})

// ObserveNodeOn runs observe-node on ex and parses its output.
func ObserveNodeOn(ctx context.Context, ex sshexec.Executor, timeout time.Duration) (NodeObservation, error) {
	cmd, err := ObserveNode.Command(struct{}{})
	if err != nil {
		return NodeObservation{}, err
	}
	cmd.Timeout = timeout
	res, err := ex.Run(ctx, cmd)
	if err != nil {
		return NodeObservation{}, err
	}
	return ParseNodeObservation(string(res.Stdout))
}

// NodeObservation is what one observe round trip learns about a node.
type NodeObservation struct {
	OS, Kernel string
	Tools      []string
	Disk       *api.DiskUsage
}

// Missing returns the tools of want that the node lacks.
func (o NodeObservation) Missing(want []string) []string {
	have := map[string]bool{}
	for _, t := range o.Tools {
		have[t] = true
	}
	var out []string
	for _, t := range want {
		if !have[t] {
			out = append(out, t)
		}
	}
	return out
}

// ParseNodeObservation parses the output of the node observe script.
func ParseNodeObservation(out string) (NodeObservation, error) {
	var o NodeObservation
	ready := false
	disk := api.DiskUsage{}
	haveDisk := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "ready":
			ready = v == "bakery-ready"
		case "kernel":
			o.Kernel = v
		case "os":
			o.OS = v
		case "tool":
			o.Tools = append(o.Tools, v)
		case "bakery_bytes", "fs_bytes", "free_bytes":
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				continue
			}
			haveDisk = true
			switch k {
			case "bakery_bytes":
				disk.BakeryBytes = n
			case "fs_bytes":
				disk.FilesystemBytes = n
			case "free_bytes":
				disk.FreeBytes = n
			}
		}
	}
	if !ready {
		return o, fmt.Errorf("node did not answer bakery-ready (output %q)", truncate(out, 200))
	}
	sort.Strings(o.Tools)
	if haveDisk {
		o.Disk = &disk
	}
	return o, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
