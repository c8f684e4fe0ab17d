package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/sshexec"
)

// ErrNoActiveSlot means a deployment runs nowhere yet (or not on the
// requested node).
var ErrNoActiveSlot = errors.New("no active slot")

// RuntimeLogs streams the journal of each node's active slot of a
// deployment to fn (called from one goroutine per node; fn must be safe
// for concurrent use). It returns when every node's command ended, or when
// ctx ends (then the remote journalctl processes are killed).
func (m *Manager) RuntimeLogs(ctx context.Context, name string, req RuntimeLogRequest, fn func(RuntimeLogLine)) error {
	obj, err := m.cfg.Store.Get(ctx, api.KindDeployment, name)
	if err != nil {
		return err
	}
	d := obj.(*api.Deployment)
	lines := req.Lines
	if lines <= 0 {
		lines = 100
	}
	type target struct {
		node, slot string
		ex         sshexec.Executor
	}
	var targets []target
	for _, ns := range d.Status.Nodes {
		if ns.ActiveSlot == "" || req.Node != "" && ns.Node != req.Node {
			continue
		}
		no, err := m.cfg.Store.Get(ctx, api.KindNode, ns.Node)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return err
		}
		n := no.(*api.Node)
		var via *api.Node
		if n.Spec.Via != "" {
			if vo, err := m.cfg.Store.Get(ctx, api.KindNode, n.Spec.Via); err == nil {
				via = vo.(*api.Node)
			}
		}
		targets = append(targets, target{node: ns.Node, slot: ns.ActiveSlot, ex: SSHConnector{Pool: m.pool, Local: sshexec.NewLocal()}.Executor(n, via)})
	}
	if len(targets) == 0 {
		if req.Node != "" {
			return fmt.Errorf("%w: deployment %s runs on no node named %q", ErrNoActiveSlot, name, req.Node)
		}
		return fmt.Errorf("%w: deployment %s has not been rolled out yet", ErrNoActiveSlot, name)
	}
	// The app's secret values are masked in what it printed, as in rollout
	// logs (a secret the app prints is still the app's business on the
	// node, but it does not travel further through Bakery).
	var mask *strings.Replacer
	if renv, err := resolveEnv(ctx, m.cfg.Store, m.cfg.Keyring, &d.Spec); err == nil {
		mask = maskReplacer(renv.secret)
	}
	script := sudo + ` journal "$APP" "$SLOT" "$LINES"`
	if req.Follow {
		script += " follow"
	}
	if d.Spec.Runtime == api.RuntimeDocker {
		// The container's own log (stdout and stderr kept apart); as
		// bakery-agent, so the follow ends with the SSH session.
		script = `docker logs --timestamps --tail "$LINES" "bakery-$APP-$SLOT"`
		if req.Follow {
			script = `docker logs --timestamps --follow --tail "$LINES" "bakery-$APP-$SLOT"`
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(targets))
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := t.ex.Run(ctx, sshexec.Command{
				Script:       script,
				Env:          map[string]string{"APP": name, "SLOT": t.slot, "LINES": strconv.Itoa(lines)},
				CaptureLimit: -1,
				Sink: sshexec.SinkFunc(func(l sshexec.Line) {
					text := l.Text
					if mask != nil {
						text = mask.Replace(text)
					}
					fn(RuntimeLogLine{Node: t.node, Slot: t.slot, Stream: l.Stream.String(), Text: text})
				}),
			})
			if err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("node %s: %w", t.node, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
