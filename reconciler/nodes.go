package reconciler

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/sshexec"
)

// Condition reasons for Nodes.
const (
	ReasonConnected       = "Connected"
	ReasonUnreachable     = "Unreachable"
	ReasonAuthFailed      = "AuthFailed"
	ReasonHostKeyMismatch = "HostKeyMismatch"
	ReasonInvalidSpec     = "InvalidSpec"
	ReasonMissingTools    = "MissingTools"
	ReasonObserveFailed   = "ObserveFailed"
	ReasonNodeReady       = "NodeReady"
)

// BakeryRoot is where Bakery keeps its files on a node.
const BakeryRoot = "/var/lib/bakery"

// RequiredTools must be present for a node to be Ready.
var RequiredTools = []string{"git", "systemctl"}

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
// served by sshexec.Local.
type SSHConnector struct {
	Pool  *sshexec.Pool
	Local sshexec.Executor
}

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

// NodeReconciler verifies and observes Nodes: it connects (pooled), checks
// that the node answers, pins its host key on first use, and records OS,
// kernel, tools and disk usage in status. One SSH round trip per node per
// cycle. A host key mismatch stalls the node: no further command is sent to
// it until its spec changes.
type NodeReconciler struct {
	Store     store.Store
	Connector Connector
	// Resync is how often a healthy node is observed again.
	Resync time.Duration
	// CommandTimeout bounds the observe command (default 30s).
	CommandTimeout time.Duration
	Logger         *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// DiskLowPercent is the free space, in percent of the filesystem,
	// below which DiskLow is raised (default DefaultDiskLowPercent;
	// negative: never).
	DiskLowPercent float64

	// events records NodeUnreachable, NodeRecovered and DiskLow on
	// transitions (nil: none).
	events *eventRecorder
}

// Reconcile implements Reconciler.
func (r *NodeReconciler) Reconcile(ctx context.Context, req Request) (Result, error) {
	return r.reconcile(ctx, req.Name, false)
}

// reconcile observes node name; force tries a stalled node again.
func (r *NodeReconciler) reconcile(ctx context.Context, name string, force bool) (Result, error) {
	obj, err := r.Store.Get(ctx, api.KindNode, name)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	node := obj.(*api.Node)
	gen := node.Metadata.Generation
	st := &node.Status
	prev := r.health(node)
	if stalled := api.FindCondition(st.Conditions, api.ConditionStalled); !force && stalled != nil &&
		stalled.Status == api.ConditionTrue && stalled.ObservedGeneration == gen {
		// Terminal until the spec changes: send nothing.
		return Result{}, nil
	}
	var via *api.Node
	if node.Spec.Via != "" {
		vo, err := r.Store.Get(ctx, api.KindNode, node.Spec.Via)
		if err != nil {
			msg := fmt.Sprintf("jump host %q: %v", node.Spec.Via, err)
			r.setUnreachable(node, ReasonUnreachable, msg)
			return Result{}, errors.Join(errors.New(msg), r.save(ctx, node, prev))
		}
		via = vo.(*api.Node)
	}

	obs, err := ObserveNode(ctx, r.Connector.Executor(node, via), r.timeout())
	if err != nil {
		switch {
		case errors.Is(err, sshexec.ErrHostKeyMismatch):
			r.setUnreachable(node, ReasonHostKeyMismatch, err.Error())
			api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionTrue,
				Reason: ReasonHostKeyMismatch, Message: "the node presented a host key other than the pinned one; no command is sent to it until its spec changes (fix spec.hostKey)", ObservedGeneration: gen})
			st.ObservedGeneration = gen
			return Result{}, Terminal(errors.Join(err, r.save(ctx, node, prev)))
		case errors.Is(err, sshexec.ErrAuth):
			r.setUnreachable(node, ReasonAuthFailed, err.Error())
		case errors.Is(err, sshexec.ErrConnection), errors.Is(err, sshexec.ErrTimeout):
			r.setUnreachable(node, ReasonUnreachable, err.Error())
		default:
			r.setUnreachable(node, ReasonObserveFailed, err.Error())
		}
		st.ObservedGeneration = gen
		return Result{}, errors.Join(fmt.Errorf("node %s: %w", node.Metadata.Name, err), r.save(ctx, node, prev))
	}

	// Reached: pin the host key seen on first use.
	if hk, ok := r.Connector.HostKey(node, via); ok && node.Spec.HostKey == "" {
		st.HostKey = hk
	}
	if hk := PinnedHostKey(node); hk != "" {
		st.HostKeyFingerprint = Fingerprint(hk)
	}
	st.Reachable = true
	st.LastError = ""
	st.LastHandshakeTime = api.NewTime(r.now())
	st.OS, st.Kernel, st.Tools, st.Disk = obs.OS, obs.Kernel, obs.Tools, obs.Disk
	api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionReachable, Status: api.ConditionTrue, Reason: ReasonConnected, ObservedGeneration: gen})
	if missing := obs.Missing(RequiredTools); len(missing) > 0 {
		api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: ReasonMissingTools,
			Message: "missing: " + strings.Join(missing, ", "), ObservedGeneration: gen})
	} else {
		api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: ReasonNodeReady, ObservedGeneration: gen})
	}
	api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionFalse, Reason: ReasonConnected, ObservedGeneration: gen})
	st.ObservedGeneration = gen
	if err := r.save(ctx, node, prev); err != nil {
		return Result{}, err
	}
	return Result{RequeueAfter: r.Resync}, nil
}

func (r *NodeReconciler) setUnreachable(node *api.Node, reason, msg string) {
	st := &node.Status
	gen := node.Metadata.Generation
	st.Reachable = false
	st.LastError = msg
	api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionReachable, Status: api.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: gen})
	api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: gen})
}

// nodeHealth is what node events are raised on the transitions of.
type nodeHealth struct {
	reachable api.ConditionStatus // "" before the first observation
	diskLow   bool
}

func (r *NodeReconciler) health(n *api.Node) nodeHealth {
	h := nodeHealth{diskLow: diskLow(n.Status.Disk, r.diskLowPercent())}
	if c := api.FindCondition(n.Status.Conditions, api.ConditionReachable); c != nil {
		h.reachable = c.Status
	}
	return h
}

func (r *NodeReconciler) diskLowPercent() float64 {
	if r.DiskLowPercent == 0 {
		return DefaultDiskLowPercent
	}
	return r.DiskLowPercent
}

// save writes node's status and, once written, raises the events of the
// transitions from prev: Reachable True→False (NodeUnreachable), False→True
// (NodeRecovered), free disk space falling below the threshold (DiskLow).
func (r *NodeReconciler) save(ctx context.Context, node *api.Node, prev nodeHealth) error {
	if err := r.saveStatus(ctx, node); err != nil {
		return err
	}
	cur := r.health(node)
	obj := api.KindNode + "/" + node.Metadata.Name
	switch {
	case prev.reachable == api.ConditionTrue && cur.reachable == api.ConditionFalse:
		r.events.record(ctx, &api.Event{Type: api.EventNodeUnreachable, Severity: api.SeverityError, Object: obj, Message: node.Status.LastError})
	case prev.reachable == api.ConditionFalse && cur.reachable == api.ConditionTrue:
		r.events.record(ctx, &api.Event{Type: api.EventNodeRecovered, Severity: api.SeverityInfo, Object: obj, Message: "reachable again"})
	}
	if cur.diskLow && !prev.diskLow {
		d := node.Status.Disk
		r.events.record(ctx, &api.Event{Type: api.EventDiskLow, Severity: api.SeverityWarning, Object: obj,
			Message: fmt.Sprintf("%.1f%% of the filesystem free (%s of %s), below %g%%", float64(d.FreeBytes)*100/float64(d.FilesystemBytes),
				humanBytes(d.FreeBytes), humanBytes(d.FilesystemBytes), r.diskLowPercent())})
	}
	return nil
}

// humanBytes formats n in binary units (1.5 GiB).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// saveStatus writes node's status; a conflict (the spec changed meanwhile)
// is returned so the node is reconciled again.
func (r *NodeReconciler) saveStatus(ctx context.Context, node *api.Node) error {
	_, err := r.Store.UpdateStatus(ctx, node)
	if err != nil {
		return fmt.Errorf("save status of node %s: %w", node.Metadata.Name, err)
	}
	return nil
}

func (r *NodeReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *NodeReconciler) timeout() time.Duration {
	if r.CommandTimeout > 0 {
		return r.CommandTimeout
	}
	return 30 * time.Second
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

// nodeObserveScript prints one key=value per line. It only reads.
const nodeObserveScript = `echo ready=bakery-ready
echo "kernel=$(uname -sr)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-$NAME}"; fi
for t in git systemctl nginx certbot docker curl; do
  if command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ]; then echo "tool=$t"; fi
done
root=` + BakeryRoot + `
if [ -d "$root" ]; then
  echo "bakery_bytes=$(du -sb "$root" 2>/dev/null | cut -f1)"
  df -PB1 "$root" | awk 'NR==2 {print "fs_bytes=" $2; print "free_bytes=" $4}'
else
  echo bakery_bytes=0
  df -PB1 / | awk 'NR==2 {print "fs_bytes=" $2; print "free_bytes=" $4}'
fi
`

// ObserveNode runs the node observe script in one round trip and parses it.
func ObserveNode(ctx context.Context, ex sshexec.Executor, timeout time.Duration) (NodeObservation, error) {
	res, err := ex.Run(ctx, sshexec.Command{Script: nodeObserveScript, Timeout: timeout})
	if err != nil {
		return NodeObservation{}, err
	}
	return ParseNodeObservation(string(res.Stdout))
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
