package deployment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/nodeconn"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/rolloutlog"
	"bakery.dev/bakery/sshexec"
)

// ExecCommandLine turns an exec's argv into the shell command line the
// node runs: one element is a command line as is (`bakery exec x --
// 'rake db:seed && echo done'`), several are quoted each.
func ExecCommandLine(argv []string) (string, error) {
	if len(argv) == 1 {
		return argv[0], nil
	}
	parts := make([]string, len(argv))
	for i, a := range argv {
		q, err := sshexec.Quote(a)
		if err != nil {
			return "", fmt.Errorf("%w: argument %d: %v", nodescript.ErrInvalid, i, err)
		}
		parts[i] = q
	}
	return strings.Join(parts, " "), nil
}

// Exec runs a one-off command (bakery exec) in the deployment's active
// release on one node — req.Node, else the first node by name whose
// active slot is healthy — as the app's user with the active slot's
// environment (systemd: the node helper's run verb; docker: a `docker run
// --rm` of the active image). Output goes to fn as it comes, the app's
// secret values masked; the command is stopped when ctx ends. It records
// an event naming who ran what where (never the environment), and
// returns the node and the command's exit status.
func Exec(ctx context.Context, st store.Store, conn nodeconn.Connector, kr *sealed.Keyring, ev *events.Recorder, name string, req api.ExecRequest, fn func(api.ExecLine)) (string, int, error) {
	obj, err := st.Get(ctx, api.KindDeployment, name)
	if err != nil {
		return "", 0, err
	}
	d := obj.(*api.Deployment)
	command, err := ExecCommandLine(req.Command)
	if err != nil {
		return "", 0, err
	}
	if strings.TrimSpace(command) == "" || strings.ContainsRune(command, 0) || len(command) > api.MaxExecCommand {
		return "", 0, fmt.Errorf("%w: the command must be 1-%d bytes without NUL", nodescript.ErrInvalid, api.MaxExecCommand)
	}
	targets, err := logTargets(ctx, st, conn, d, req.Node)
	if err != nil {
		return "", 0, err
	}
	t := targets[0]
	if req.Node == "" {
		healthy := map[string]bool{}
		for _, ns := range d.Status.Nodes {
			healthy[ns.Node] = ns.Healthy
		}
		for _, c := range targets {
			if healthy[c.node] {
				t = c
				break
			}
		}
	}
	obs, err := nodescript.ObserveAppOn(ctx, t.ex, nodescript.ObserveAppInput{App: name, Runtime: d.Spec.Runtime}, time.Minute)
	if err != nil {
		return t.node, 0, fmt.Errorf("node %s: %w", t.node, err)
	}
	if obs.State == nil || obs.State.Active == "" {
		return t.node, 0, fmt.Errorf("%w: deployment %s serves from no slot on node %s", ErrNoActiveSlot, name, t.node)
	}
	slot := obs.State.Slots[obs.State.Active]
	timeout := req.TimeoutSeconds
	if timeout <= 0 {
		timeout = api.DefaultExecTimeout
	}
	b := make([]byte, 8)
	rand.Read(b)
	in := nodescript.RunInput{App: name, Slot: obs.State.Active, Commit: slot.Commit, Release: slot.Release,
		Script: "exec-" + hex.EncodeToString(b) + ".sh", Command: command, TimeoutSec: timeout}
	s := nodescript.RunCommand
	if isDocker(&d.Spec) {
		s = nodescript.DockerRun
		in.Network = "bridge"
		if d.Spec.Docker != nil && d.Spec.Docker.Network != "" {
			in.Network = d.Spec.Docker.Network
		}
	}
	cmd, err := s.Command(in)
	if err != nil {
		return t.node, 0, err
	}
	var mask *strings.Replacer
	if renv, err := resolveEnv(ctx, st, kr, &d.Spec); err == nil {
		mask = rolloutlog.MaskReplacer(renv.secret)
	}
	by := req.By
	if by == "" {
		by = "someone"
	}
	if ev != nil {
		ev.Record(context.WithoutCancel(ctx), &api.Event{Object: api.KindDeployment + "/" + name, Type: api.EventExec, Severity: api.SeverityInfo,
			Message: fmt.Sprintf("%s ran a command on node %s in commit %s (%s slot): %s", by, t.node, api.ShortCommit(slot.Commit), obs.State.Active, clip(command, 500))})
	}
	cmd.Timeout = time.Duration(timeout)*time.Second + time.Minute // the node stops it after timeout (exit 124)
	cmd.CaptureLimit = -1
	cmd.Sink = sshexec.SinkFunc(func(l sshexec.Line) {
		text := l.Text
		if mask != nil {
			text = mask.Replace(text)
		}
		fn(api.ExecLine{Node: t.node, Stream: l.Stream.String(), Text: text})
	})
	res, err := t.ex.Run(ctx, cmd)
	var ee *sshexec.ExitError
	if errors.As(err, &ee) {
		return t.node, ee.Code, nil
	}
	if err != nil {
		return t.node, 0, fmt.Errorf("node %s: %w", t.node, err)
	}
	return t.node, res.ExitCode, nil
}

// clip shortens s to at most n bytes (an event's message stays short).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
