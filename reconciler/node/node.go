package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/sshexec"
)

// Condition reasons for Nodes.
const (
	ReasonConnected       = "Connected"
	ReasonUnreachable     = "Unreachable"
	ReasonAuthFailed      = "AuthFailed"
	ReasonHostKeyMismatch = "HostKeyMismatch"
	ReasonMissingTools    = "MissingTools"
	ReasonObserveFailed   = "ObserveFailed"
	ReasonNodeReady       = "NodeReady"
	// ReasonDiskFull: the filesystem of Bakery's directory on the node has
	// less than 1 MiB free.
	ReasonDiskFull = "DiskFull"
	// ReasonLocalNodesDisabled: a local node on a server started without
	// --allow-local-nodes; nothing runs on the control plane's host.
	ReasonLocalNodesDisabled = "LocalNodesDisabled"
)

// DefaultDiskLowPercent is the free space, in percent of a node's
// filesystem, below which a DiskLow event is raised.
const DefaultDiskLowPercent = 10

// DefaultStatusRefresh is how often a node whose status has not changed
// otherwise gets its lastHandshakeTime and disk usage written again.
const DefaultStatusRefresh = 5 * time.Minute

// RequiredTools must be present for a node to be Ready.
var RequiredTools = []string{"git", "systemctl"}

// Reconciler verifies and observes Nodes: it connects (pooled), checks
// that the node answers, pins its host key on first use, and records OS,
// kernel, tools and disk usage in status. One SSH round trip per node per
// cycle. A host key mismatch stalls the node: no further command is sent to
// it until its spec changes.
type Reconciler struct {
	Store     store.Store
	Connector nodeconn.Connector
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
	// StatusRefresh is how often a node observed with nothing else
	// changed gets its status written anyway, to refresh
	// lastHandshakeTime and the disk usage (default DefaultStatusRefresh;
	// negative: at every observe). Between refreshes a converged node
	// costs no write: status.lastHandshakeTime is at most this old while
	// the node is Reachable.
	StatusRefresh time.Duration

	// events records NodeUnreachable, NodeRecovered and DiskLow on
	// transitions (nil: none).
	Events *events.Recorder
}

// Reconcile implements Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req reconciler.Request) (reconciler.Result, error) {
	return r.reconcile(ctx, req.Name, false)
}

// reconcile observes node name; force tries a stalled node again.
// Verify connects to the node now and observes it, even when it is
// stalled (a fixed host key or a re-installed node is then picked up),
// and records the outcome in its status.
func (r *Reconciler) Verify(ctx context.Context, name string) (reconciler.Result, error) {
	return r.reconcile(ctx, name, true)
}

func (r *Reconciler) reconcile(ctx context.Context, name string, force bool) (reconciler.Result, error) {
	obj, err := r.Store.Get(ctx, api.KindNode, name)
	if errors.Is(err, store.ErrNotFound) {
		return reconciler.Result{}, nil
	}
	if err != nil {
		return reconciler.Result{}, err
	}
	node := obj.(*api.Node)
	gen := node.Metadata.Generation
	st := &node.Status
	prev := r.health(node)
	stored := storedStatus{json: node.StatusJSON(), handshake: st.LastHandshakeTime, disk: st.Disk}
	if stalled := api.FindCondition(st.Conditions, api.ConditionStalled); !force && stalled != nil &&
		stalled.Status == api.ConditionTrue && stalled.ObservedGeneration == gen && stalled.Reason != ReasonLocalNodesDisabled {
		// Terminal until the spec changes: send nothing.
		return reconciler.Result{}, nil
	}
	var via *api.Node
	if node.Spec.Via != "" {
		vo, err := r.Store.Get(ctx, api.KindNode, node.Spec.Via)
		if err != nil {
			msg := fmt.Sprintf("jump host %q: %v", node.Spec.Via, err)
			r.setUnreachable(node, ReasonUnreachable, msg)
			return reconciler.Result{}, errors.Join(errors.New(msg), r.save(ctx, node, prev))
		}
		via = vo.(*api.Node)
	}

	obs, err := nodescript.ObserveNodeOn(ctx, r.Connector.Executor(node, via), r.timeout())
	if err != nil {
		return r.observeFailed(ctx, node, prev, err)
	}

	// Reached: pin the host key seen on first use.
	if hk, ok := r.Connector.HostKey(node, via); ok && node.Spec.HostKey == "" {
		st.HostKey = hk
	}
	if hk := nodeconn.PinnedHostKey(node); hk != "" {
		st.HostKeyFingerprint = nodeconn.Fingerprint(hk)
	}
	st.Reachable = true
	st.LastError = ""
	st.LastHandshakeTime = api.NewTime(r.now())
	st.OS, st.Kernel, st.Tools, st.Disk = obs.OS, obs.Kernel, obs.Tools, obs.Disk
	api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionReachable, Status: api.ConditionTrue, Reason: ReasonConnected, ObservedGeneration: gen})
	if missing := obs.Missing(RequiredTools); len(missing) > 0 {
		api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: ReasonMissingTools,
			Message: "missing: " + strings.Join(missing, ", "), ObservedGeneration: gen})
	} else if diskFull(obs.Disk) {
		// Not Ready until space is freed: turning Ready again then wakes
		// the deployments that wait for the node.
		api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionFalse, Reason: ReasonDiskFull,
			Message: fmt.Sprintf("the filesystem of Bakery's directory is full (%s free of %s): rollouts to this node wait until space is freed",
				humanBytes(obs.Disk.FreeBytes), humanBytes(obs.Disk.FilesystemBytes)), ObservedGeneration: gen})
	} else {
		api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: ReasonNodeReady, ObservedGeneration: gen})
	}
	api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionFalse, Reason: ReasonConnected, ObservedGeneration: gen})
	st.ObservedGeneration = gen
	if r.unchanged(node, stored) {
		return reconciler.Result{RequeueAfter: r.Resync}, nil
	}
	if err := r.save(ctx, node, prev); err != nil {
		return reconciler.Result{}, err
	}
	return reconciler.Result{RequeueAfter: r.Resync}, nil
}

// storedStatus is what a node's status was before this observe.
type storedStatus struct {
	json      []byte
	handshake *api.Time
	disk      *api.DiskUsage
}

// unchanged reports whether node's new status differs from the stored one
// only by what is refreshed coarsely — lastHandshakeTime and the disk's
// byte counts — and the stored ones are younger than StatusRefresh and on
// the same side of the DiskLow threshold: then nothing is written. A
// changed condition, error, tool, OS or host key is always written.
func (r *Reconciler) unchanged(node *api.Node, stored storedStatus) bool {
	st := &node.Status
	refresh := r.StatusRefresh
	if refresh == 0 {
		refresh = DefaultStatusRefresh
	}
	if refresh < 0 || stored.handshake == nil || st.LastHandshakeTime == nil ||
		st.LastHandshakeTime.Sub(stored.handshake.Time) >= refresh ||
		diskLow(stored.disk, r.diskLowPercent()) != diskLow(st.Disk, r.diskLowPercent()) ||
		(stored.disk == nil) != (st.Disk == nil) {
		return false
	}
	hs, disk := st.LastHandshakeTime, st.Disk
	st.LastHandshakeTime, st.Disk = stored.handshake, stored.disk
	same := api.Equal(node.StatusJSON(), stored.json)
	st.LastHandshakeTime, st.Disk = hs, disk
	return same
}

// observeFailed records why node could not be observed. A host key
// mismatch stalls the node until its spec changes; a local node on a
// server without --allow-local-nodes stalls too, but is tried again at
// every resync (a restart with the flag picks it up without a spec
// change); anything else is retried with backoff.
func (r *Reconciler) observeFailed(ctx context.Context, node *api.Node, prev nodeHealth, err error) (reconciler.Result, error) {
	st := &node.Status
	gen := node.Metadata.Generation
	st.ObservedGeneration = gen
	stall := func(reason, msg string) (reconciler.Result, error) {
		r.setUnreachable(node, reason, err.Error())
		api.SetCondition(&st.Conditions, api.Condition{Type: api.ConditionStalled, Status: api.ConditionTrue,
			Reason: reason, Message: msg, ObservedGeneration: gen})
		return reconciler.Result{}, reconciler.Terminal(errors.Join(err, r.save(ctx, node, prev)))
	}
	switch {
	case errors.Is(err, nodeconn.ErrLocalNodesDisabled):
		return stall(ReasonLocalNodesDisabled, err.Error())
	case errors.Is(err, sshexec.ErrHostKeyMismatch):
		return stall(ReasonHostKeyMismatch, "the node presented a host key other than the pinned one; no command is sent to it until its spec changes (fix spec.hostKey)")
	case errors.Is(err, sshexec.ErrAuth):
		r.setUnreachable(node, ReasonAuthFailed, err.Error())
	case errors.Is(err, sshexec.ErrConnection), errors.Is(err, sshexec.ErrTimeout):
		r.setUnreachable(node, ReasonUnreachable, err.Error())
	default:
		r.setUnreachable(node, ReasonObserveFailed, err.Error())
	}
	return reconciler.Result{}, errors.Join(fmt.Errorf("node %s: %w", node.Metadata.Name, err), r.save(ctx, node, prev))
}

func (r *Reconciler) setUnreachable(node *api.Node, reason, msg string) {
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

func (r *Reconciler) health(n *api.Node) nodeHealth {
	h := nodeHealth{diskLow: diskLow(n.Status.Disk, r.diskLowPercent())}
	if c := api.FindCondition(n.Status.Conditions, api.ConditionReachable); c != nil {
		h.reachable = c.Status
	}
	return h
}

func (r *Reconciler) diskLowPercent() float64 {
	if r.DiskLowPercent == 0 {
		return DefaultDiskLowPercent
	}
	return r.DiskLowPercent
}

// save writes node's status and, once written, raises the events of the
// transitions from prev: Reachable True→False (NodeUnreachable), False→True
// (NodeRecovered), free disk space falling below the threshold (DiskLow).
func (r *Reconciler) save(ctx context.Context, node *api.Node, prev nodeHealth) error {
	if err := r.saveStatus(ctx, node); err != nil {
		return err
	}
	cur := r.health(node)
	obj := api.KindNode + "/" + node.Metadata.Name
	switch {
	case prev.reachable == api.ConditionTrue && cur.reachable == api.ConditionFalse:
		r.Events.Record(ctx, &api.Event{Type: api.EventNodeUnreachable, Severity: api.SeverityError, Object: obj, Message: node.Status.LastError})
	case prev.reachable == api.ConditionFalse && cur.reachable == api.ConditionTrue:
		r.Events.Record(ctx, &api.Event{Type: api.EventNodeRecovered, Severity: api.SeverityInfo, Object: obj, Message: "reachable again"})
	}
	if cur.diskLow && !prev.diskLow {
		d := node.Status.Disk
		r.Events.Record(ctx, &api.Event{Type: api.EventDiskLow, Severity: api.SeverityWarning, Object: obj,
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
func (r *Reconciler) saveStatus(ctx context.Context, node *api.Node) error {
	_, err := r.Store.UpdateStatus(ctx, node)
	if err != nil {
		return fmt.Errorf("save status of node %s: %w", node.Metadata.Name, err)
	}
	return nil
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) timeout() time.Duration {
	if r.CommandTimeout > 0 {
		return r.CommandTimeout
	}
	return 30 * time.Second
}

// diskFullBytes is the free space below which a node's filesystem counts
// as full (Ready=False, reason DiskFull).
const diskFullBytes = 1 << 20

// diskFull reports whether d has less than diskFullBytes free; unknown
// usage is not full.
func diskFull(d *api.DiskUsage) bool {
	return d != nil && d.FilesystemBytes > 0 && d.FreeBytes < diskFullBytes
}

// diskLow reports whether d has less than pct percent free; unknown usage
// is not low.
func diskLow(d *api.DiskUsage, pct float64) bool {
	if d == nil || d.FilesystemBytes <= 0 || pct <= 0 {
		return false
	}
	return float64(d.FreeBytes)*100 < pct*float64(d.FilesystemBytes)
}
