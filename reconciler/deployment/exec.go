package deployment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/nodeconn"
	nf "bakery.dev/bakery/reconciler/nodefiles"
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
	x, err := prepareExec(ctx, st, conn, kr, ev, name, req)
	if err != nil {
		return x.node, 0, err
	}
	s := nodescript.RunCommand
	if x.docker {
		s = nodescript.DockerRun
	}
	cmd, err := s.Command(x.in)
	if err != nil {
		return x.node, 0, err
	}
	cmd.Timeout = time.Duration(x.in.TimeoutSec)*time.Second + time.Minute // the node stops it after the timeout (exit 124)
	cmd.CaptureLimit = -1
	cmd.Sink = sshexec.SinkFunc(func(l sshexec.Line) {
		text := l.Text
		if x.mask != nil {
			text = x.mask.Replace(text)
		}
		fn(api.ExecLine{Node: x.node, Stream: l.Stream.String(), Text: text})
	})
	res, err := x.ex.Run(ctx, cmd)
	var ee *sshexec.ExitError
	if errors.As(err, &ee) {
		return x.node, ee.Code, nil
	}
	if err != nil {
		return x.node, 0, fmt.Errorf("node %s: %w", x.node, err)
	}
	return x.node, res.ExitCode, nil
}

// execRun is an exec resolved to a node, its active release and slot.
type execRun struct {
	node   string
	ex     sshexec.Executor
	in     nodescript.RunInput
	docker bool
	mask   *strings.Replacer
}

// prepareExec resolves an exec's node and active release, checks the
// command and records the Exec event.
func prepareExec(ctx context.Context, st store.Store, conn nodeconn.Connector, kr *sealed.Keyring, ev *events.Recorder, name string, req api.ExecRequest) (execRun, error) {
	obj, err := st.Get(ctx, api.KindDeployment, name)
	if err != nil {
		return execRun{}, err
	}
	d := obj.(*api.Deployment)
	command, err := ExecCommandLine(req.Command)
	if err != nil {
		return execRun{}, err
	}
	if strings.TrimSpace(command) == "" || strings.ContainsRune(command, 0) || len(command) > api.MaxExecCommand {
		return execRun{}, fmt.Errorf("%w: the command must be 1-%d bytes without NUL", nodescript.ErrInvalid, api.MaxExecCommand)
	}
	targets, err := logTargets(ctx, st, conn, d, req.Node)
	if err != nil {
		return execRun{}, err
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
	x := execRun{node: t.node, ex: t.ex, docker: isDocker(&d.Spec)}
	obs, err := nodescript.ObserveAppOn(ctx, t.ex, nodescript.ObserveAppInput{App: name, Runtime: d.Spec.Runtime}, time.Minute)
	if err != nil {
		return x, fmt.Errorf("node %s: %w", t.node, err)
	}
	if obs.State == nil || obs.State.Active == "" {
		return x, fmt.Errorf("%w: deployment %s serves from no slot on node %s", ErrNoActiveSlot, name, t.node)
	}
	slot := obs.State.Slots[obs.State.Active]
	timeout := req.TimeoutSeconds
	if timeout <= 0 {
		timeout = api.DefaultExecTimeout
	}
	b := make([]byte, 8)
	rand.Read(b)
	x.in = nodescript.RunInput{App: name, Slot: obs.State.Active, Commit: slot.Commit, Release: slot.Release,
		Script: "exec-" + hex.EncodeToString(b) + ".sh", Command: command, TimeoutSec: timeout, Limits: nf.LimitsOf(&d.Spec)}
	if x.docker {
		x.in.Network = "bridge"
		if d.Spec.Docker != nil && d.Spec.Docker.Network != "" {
			x.in.Network = d.Spec.Docker.Network
		}
	}
	if renv, err := resolveEnv(ctx, st, kr, &d.Spec); err == nil {
		x.mask = rolloutlog.MaskReplacer(renv.secret)
	}
	by := req.By
	if by == "" {
		by = "someone"
	}
	if ev != nil {
		tty := ""
		if req.TTY {
			tty = " on a terminal"
		}
		ev.Record(context.WithoutCancel(ctx), &api.Event{Object: api.KindDeployment + "/" + name, Type: api.EventExec, Severity: api.SeverityInfo,
			Message: fmt.Sprintf("%s ran a command%s on node %s in commit %s (%s slot): %s", by, tty, t.node, api.ShortCommit(slot.Commit), obs.State.Active, clip(command, 500))})
	}
	return x, nil
}

// ExecTerminal is Exec on a terminal (bakery exec -it): the command runs
// on a pseudo-terminal over the node's SSH connection, stdin is what the
// user types, out gets the terminal's output (not masked: it is the
// user's own session), resize the window sizes. The command is written
// to the app's run directory first; the SSH exec request then names only
// that script (through the node helper's run verb with --tty), never the
// command or any secret.
func ExecTerminal(ctx context.Context, st store.Store, conn nodeconn.Connector, kr *sealed.Keyring, ev *events.Recorder, name string, req api.ExecRequest,
	stdin io.Reader, out io.Writer, rows, cols int, resize <-chan [2]int) (string, int, error) {
	req.TTY = true
	x, err := prepareExec(ctx, st, conn, kr, ev, name, req)
	if err != nil {
		return x.node, 0, err
	}
	tr, ok := x.ex.(sshexec.TerminalRunner)
	if !ok {
		return x.node, 0, fmt.Errorf("node %s: its connection offers no terminal", x.node)
	}
	in := x.in
	script := path.Join(nf.AppDir(name), "run", in.Script)
	body := "#!/bin/sh\n# Generated by Bakery: a command run once.\n" + in.Command + "\n"
	if err := x.ex.WriteFile(ctx, sshexec.File{Path: script, Mode: 0o644, Content: []byte(body)}); err != nil {
		return x.node, 0, fmt.Errorf("node %s: writing the command: %w", x.node, err)
	}
	var remote string
	if x.docker {
		env := nf.DockerEnvPath(name, in.Slot)
		netArg := ""
		if in.Network == "host" {
			netArg = " --network host"
		}
		remote = fmt.Sprintf("docker run --rm --init -it --name %s-%s --env-file %s -v %s:/bakery-exec.sh:ro%s --label bakery.app=%s --label bakery.run=1 %s /bin/sh /bakery-exec.sh; rc=$?; rm -f %s; exit $rc",
			nf.ContainerName(name, "run"), strings.TrimSuffix(in.Script, ".sh"), env, script, netArg, name, nf.ImageRef(name, in.Release), script)
	} else {
		remote = fmt.Sprintf("sudo -n %s run %s %s %s %s %d --tty; rc=$?; rm -f %s; exit $rc",
			nf.SudoHelper, name, in.Slot, in.Release, in.Script, in.TimeoutSec, script)
	}
	code, err := tr.RunTerminal(ctx, sshexec.Terminal{Command: remote, Rows: rows, Cols: cols, Stdin: stdin, Output: out, Resize: resize})
	if err != nil {
		return x.node, 0, fmt.Errorf("node %s: %w", x.node, err)
	}
	return x.node, code, nil
}

// clip shortens s to at most n bytes (an event's message stays short).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
