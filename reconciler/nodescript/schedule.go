package nodescript

import (
	"strings"

	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// SchedInstallInput is the input of sched-install.
type SchedInstallInput struct {
	// Sched holds the parameters of the schedule's timer and service; the
	// helper renders both from its own templates (nodefiles.SchedTimer
	// and SchedService render the same text).
	Sched nf.Sched
	// Script is the schedule's script (nodefiles.SchedScript), sent on
	// stdin.
	Script string
}

// SchedInstall writes a schedule's script and has the bakery-sudo helper
// install and enable its timer and service (sched-install).
var SchedInstall = define("sched-install", func(in SchedInstallInput, c *call) {
	if err := in.Sched.Validate(); err != nil {
		c.fail("%v", err)
		return
	}
	args := nf.SchedArgs(in.Sched)
	for i, name := range []string{"APP", "NAME", "SLOT", "RELEASE", "TIMEOUT", "CONCURRENCY", "RUNTIME", "CALENDAR"} {
		c.set(name, args[i])
	}
	c.set("LIMITS", strings.Join(args[8:], " "))
	c.input(in.Script)
})

// SchedRemoveInput is the input of sched-remove.
type SchedRemoveInput struct {
	App string
	// Name is the schedule to remove; "" removes every one of the app's.
	Name string
}

// SchedRemove stops and removes a schedule (or all of the app's) through
// the bakery-sudo helper (sched-remove), and its script.
var SchedRemove = define("sched-remove", func(in SchedRemoveInput, c *call) {
	c.app(in.App)
	if in.Name != "" {
		if r := nf.ValidateSchedName(in.Name); r != "" {
			c.fail("%s", r)
		}
	}
	c.set("NAME", in.Name)
})

// SchedJournalUnit is the journal verb's selector of a schedule's service.
func SchedJournalUnit(name string) string { return "sched-" + name }
