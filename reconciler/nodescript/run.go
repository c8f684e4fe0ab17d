package nodescript

import (
	"fmt"
	"strings"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// RunInput is the input of run-command and docker-run: one command run in a
// release of the app with a slot's environment (a release command, a
// one-off command from `bakery exec`).
type RunInput struct {
	App, Slot string
	Commit    string
	Release   string // the release directory (nodefiles.ReleaseID)
	// Script names the command's file in the app's run directory
	// (nodefiles.ValidateScriptName), e.g. release-<hex>.sh.
	Script string
	// Command is run by /bin/sh (spec or user text; never a secret).
	Command string
	// TimeoutSec bounds the command on the node (exit status 124).
	TimeoutSec int
	// TTY asks for a terminal (--tty).
	TTY bool
	// Network is the spec's docker network (docker-run only).
	Network string
	// Limits are the app's persistent directories and resource limits:
	// the command sees the directories and runs within the limits.
	Limits nf.Limits
}

func (in RunInput) fill(c *call) {
	c.app(in.App)
	c.slot(in.Slot)
	if r := nf.ValidateRelease(in.Release); r != "" {
		c.fail("%s", r)
	}
	if r := nf.ValidateScriptName(in.Script); r != "" {
		c.fail("%s", r)
	}
	if r := nf.ValidateStopTimeout(in.TimeoutSec); r != "" {
		c.fail("timeout: %s", r)
	}
	if in.Command == "" {
		c.fail("empty command")
	}
	c.set("RELEASE", in.Release)
	c.set("SCRIPT", in.Script)
	c.setInt("TIMEOUT", int64(in.TimeoutSec))
	c.set("CMD", in.Command)
	if in.TTY {
		c.set("TTY", "1")
	} else {
		c.set("TTY", "")
	}
	c.set("LIMITS", strings.Join(in.Limits.Args(), " "))
	dockerLimits(c, in.App, in.Limits)
}

// Run runs the command through the bakery-sudo helper's run verb as the
// app's user (systemd runtime).
var RunCommand = define("run-command", func(in RunInput, c *call) { in.fill(c) })

// DockerRun runs the command in a `docker run --rm` of the release's image
// with the slot's env file (docker runtime).
var DockerRun = define("docker-run", func(in RunInput, c *call) {
	in.fill(c)
	if !api.IsCommitID(in.Commit) {
		c.fail("commit %q is not a full commit id", in.Commit)
	}
	c.set("NAME", fmt.Sprintf("%s-%s", nf.ContainerName(in.App, "run"), in.Script[:len(in.Script)-len(".sh")]))
	c.set("NETWORK", in.Network)
	c.set("IMAGE", nf.ImageRef(in.App, in.Release))
	c.set("ENVFILE", nf.DockerEnvPath(in.App, in.Slot))
	c.set("COMMIT", in.Commit)
})
