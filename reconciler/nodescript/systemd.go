package nodescript

import (
	"strconv"
	"strings"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// SlotInput is the input of the scripts that act on one slot of an app.
type SlotInput struct {
	App, Slot string
}

// SystemdEnvInput is the input of systemd-install-env.
type SystemdEnvInput struct {
	App, Slot string
	// EnvFile is the slot's environment file (nodefiles.EnvFile), sent on
	// stdin: it holds the app's secrets, so never on a command line.
	EnvFile string
}

// SystemdInstallEnv creates the app's run directory and installs the
// slot's environment file through the bakery-sudo helper (env-install),
// which writes it root-owned where systemd reads it.
var SystemdInstallEnv = define("systemd-install-env", func(in SystemdEnvInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
	c.input(in.EnvFile)
})

// SystemdUnitInput is the input of systemd-install-unit.
type SystemdUnitInput struct {
	// Unit holds the unit's parameters. The helper renders the unit from
	// its own template (nodefiles.Unit renders the same text); no unit
	// text is ever sent.
	Unit nf.Slot
}

// SystemdInstallUnit installs the slot's unit through the bakery-sudo
// helper (unit-install APP SLOT PORT RELEASE STOP) and reloads systemd.
var SystemdInstallUnit = define("systemd-install-unit", func(in SystemdUnitInput, c *call) {
	if err := in.Unit.Validate(); err != nil {
		c.fail("%v", err)
		return
	}
	args := nf.UnitArgs(in.Unit)
	for i, name := range []string{"APP", "SLOT", "PORT", "RELEASE", "STOP"} {
		c.set(name, args[i])
	}
	c.set("LIMITS", strings.Join(args[5:], " "))
})

// SystemdStart (re)starts the slot's unit and enables it at boot.
var SystemdStart = define("systemd-start", func(in SlotInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
})

// SystemdStop stops the slot's unit and disables it at boot.
var SystemdStop = define("systemd-stop", func(in SlotInput, c *call) {
	c.app(in.App)
	c.slot(in.Slot)
})

// SystemdRemove stops both slots' units and removes them, their
// environment files and the app's own user and data directory (keeping
// its persistent directories and user unless PurgeData).
var SystemdRemove = define("systemd-remove", func(in RemoveInput, c *call) { in.fill(c) })

// RemoveInput is the input of the scripts that remove an app from a node.
type RemoveInput struct {
	App string
	// PurgeData removes the app's persistent directories too; without
	// it they stay (and the app's user, which owns them, with them).
	PurgeData bool
}

func (in RemoveInput) fill(c *call) {
	c.app(in.App)
	if in.PurgeData {
		c.set("PURGE", "1")
	} else {
		c.set("PURGE", "")
	}
}

// ProcsInput is the input of the scripts that act on the processes of a
// slot.
type ProcsInput struct {
	App, Slot string
	// Release is the slot's release (install only).
	Release string
	// Procs are the processes: their units' parameters (install) or
	// their names and replicas (scale).
	Procs []Proc
	// Limits are the app's persistent directories and resource limits
	// (install only).
	Limits nf.Limits
}

// Proc is one process of a slot.
type Proc struct {
	Name           string
	Replicas       int
	StopTimeoutSec int
}

func (in ProcsInput) fill(c *call, field func(Proc) int, check func(int) string) {
	c.app(in.App)
	c.slot(in.Slot)
	var list []string
	for _, p := range in.Procs {
		if r := api.ValidateProcessName(p.Name); r != "" {
			c.fail("process name %s", r)
			return
		}
		if r := check(field(p)); r != "" {
			c.fail("process %s: %s", p.Name, r)
			return
		}
		list = append(list, p.Name+":"+strconv.Itoa(field(p)))
	}
	c.set("PROCS", strings.Join(list, " "))
}

// SystemdInstallProcs has the helper render each process's template unit
// (proc-install APP SLOT PROC RELEASE STOP), removes the slot's process
// units no longer in Procs and reloads systemd.
var SystemdInstallProcs = define("systemd-install-procs", func(in ProcsInput, c *call) {
	in.fill(c, func(p Proc) int { return nf.Process{StopTimeoutSec: p.StopTimeoutSec}.StopTimeout() }, nf.ValidateStopTimeout)
	if r := nf.ValidateRelease(in.Release); r != "" {
		c.fail("%s", r)
	}
	c.set("RELEASE", in.Release)
	if r := in.Limits.Validate(); r != "" {
		c.fail("%s", r)
	}
	c.set("LIMITS", strings.Join(in.Limits.Args(), " "))
})

// SystemdScaleProcs runs instances 1..Replicas of each process of the
// slot and stops the others (proc-scale).
var SystemdScaleProcs = define("systemd-scale-procs", func(in ProcsInput, c *call) {
	in.fill(c, func(p Proc) int { return p.Replicas }, nf.ValidateReplicas)
})

// SystemdProcsStop stops every process of the slot, or only those in
// Procs (their names), (SIGTERM, each unit's stop timeout) and removes
// their units (proc-remove APP SLOT [PROC]).
var SystemdProcsStop = define("systemd-procs-stop", func(in ProcsInput, c *call) {
	in.fill(c, func(Proc) int { return 0 }, func(int) string { return "" })
	names := strings.Fields(c.env["PROCS"])
	for i, n := range names {
		names[i], _, _ = strings.Cut(n, ":")
	}
	c.set("PROCS", strings.Join(names, " "))
})
