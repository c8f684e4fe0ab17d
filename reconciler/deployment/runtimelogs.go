package deployment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/rolloutlog"
	"bakery.dev/bakery/sshexec"
)

// ErrNoActiveSlot means a deployment runs nowhere yet (or not on the
// requested node).
var ErrNoActiveSlot = errors.New("no active slot")

// RuntimeLogs streams the journal of each node's active slot of a
// deployment to fn (called from one goroutine per node; fn must be safe
// for concurrent use). It returns when every node's command ended, or when
// ctx ends (then the remote journalctl processes are killed).
func RuntimeLogs(ctx context.Context, st store.Store, conn nodeconn.Connector, kr *sealed.Keyring, name string, req api.RuntimeLogRequest, fn func(api.RuntimeLogLine)) error {
	obj, err := st.Get(ctx, api.KindDeployment, name)
	if err != nil {
		return err
	}
	d := obj.(*api.Deployment)
	lines := req.Lines
	if lines <= 0 {
		lines = 100
	}
	targets, err := logTargets(ctx, st, conn, d, req.Node)
	if err != nil {
		return err
	}
	// The app's secret values are masked in what it printed, as in rollout
	// logs (a secret the app prints is still the app's business on the
	// node, but it does not travel further through Bakery).
	var mask *strings.Replacer
	if renv, err := resolveEnv(ctx, st, kr, &d.Spec); err == nil {
		mask = rolloutlog.MaskReplacer(renv.secret)
	}
	if req.Schedule != "" {
		if targets, err = scheduleLogTargets(d, req.Schedule, targets); err != nil {
			return err
		}
	}
	script := nodescript.Journal
	if d.Spec.Runtime == api.RuntimeDocker && req.Schedule == "" {
		// The container's own log (stdout and stderr kept apart); as
		// bakery-agent, so the follow ends with the SSH session.
		script = nodescript.DockerLogs
	}
	var wg sync.WaitGroup
	errs := make([]error, len(targets))
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd, err := script.Command(nodescript.LogsInput{App: name, Slot: t.slot, Schedule: req.Schedule, Lines: lines, Follow: req.Follow, Process: req.Process})
			if err == nil {
				cmd.CaptureLimit = -1
				cmd.Sink = sshexec.SinkFunc(func(l sshexec.Line) {
					text := l.Text
					if mask != nil {
						text = mask.Replace(text)
					}
					fn(api.RuntimeLogLine{Node: t.node, Slot: t.slot, Stream: l.Stream.String(), Text: text})
				})
				_, err = t.ex.Run(ctx, cmd)
			}
			if err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("node %s: %w", t.node, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// logTarget is a node's active slot whose log is read.
type logTarget struct {
	node, slot string
	ex         sshexec.Executor
}

// logTargets returns the active slots of d (on node only, when set).
func logTargets(ctx context.Context, st store.Store, conn nodeconn.Connector, d *api.Deployment, node string) ([]logTarget, error) {
	var targets []logTarget
	for _, ns := range d.Status.Nodes {
		if ns.ActiveSlot == "" || node != "" && ns.Node != node {
			continue
		}
		no, err := st.Get(ctx, api.KindNode, ns.Node)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return nil, err
		}
		n := no.(*api.Node)
		var via *api.Node
		if n.Spec.Via != "" {
			if vo, err := st.Get(ctx, api.KindNode, n.Spec.Via); err == nil {
				via = vo.(*api.Node)
			}
		}
		targets = append(targets, logTarget{node: ns.Node, slot: ns.ActiveSlot, ex: conn.Executor(n, via)})
	}
	if len(targets) == 0 {
		if node != "" {
			return nil, fmt.Errorf("%w: deployment %s runs on no node named %q", ErrNoActiveSlot, d.Metadata.Name, node)
		}
		return nil, fmt.Errorf("%w: deployment %s has not been rolled out yet", ErrNoActiveSlot, d.Metadata.Name)
	}
	return targets, nil
}

// scheduleLogTargets keeps the targets that run schedule name (as
// status.schedules says; every target before it says anything). Schedules
// log to the journal under both runtimes (a docker run's output goes
// through its service).
func scheduleLogTargets(d *api.Deployment, name string, targets []logTarget) ([]logTarget, error) {
	known := false
	for _, sc := range d.Spec.Schedules {
		known = known || sc.Name == name
	}
	if !known {
		return nil, fmt.Errorf("%w: deployment %s has no schedule %q", ErrNoActiveSlot, d.Metadata.Name, name)
	}
	for _, st := range d.Status.Schedules {
		if st.Name != name || len(st.Nodes) == 0 {
			continue
		}
		var out []logTarget
		for _, t := range targets {
			for _, n := range st.Nodes {
				if t.node == n {
					t.slot = "schedule " + name
					out = append(out, t)
				}
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	for i := range targets {
		targets[i].slot = "schedule " + name
	}
	return targets, nil
}
