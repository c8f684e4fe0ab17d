package nodescript

import (
	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
)

// LogsInput is the input of journal and docker-logs.
type LogsInput struct {
	App, Slot string
	Lines     int  // how many past lines first
	Follow    bool // go on printing new lines until cancelled
	// Process selects the journal of one process (spec.processes) of the
	// slot instead of its web unit (journal only).
	Process string
	// Schedule, when set (journal only), selects that schedule's
	// service instead of the slot's unit.
	Schedule string
}

func (in LogsInput) fill(c *call) {
	c.app(in.App)
	if in.Schedule != "" {
		if r := nf.ValidateSchedName(in.Schedule); r != "" {
			c.fail("%s", r)
		}
		// The helper's journal verb takes sched-NAME in the slot's place.
		c.set("SLOT", SchedJournalUnit(in.Schedule))
	} else {
		c.slot(in.Slot)
	}
	c.setInt("LINES", int64(in.Lines))
	follow := ""
	if in.Follow {
		follow = "1"
	}
	c.set("FOLLOW", follow)
	if in.Process != "" {
		if r := api.ValidateProcessName(in.Process); r != "" {
			c.fail("process name %s", r)
		}
	}
	c.set("PROCESS", in.Process)
}

// Journal prints the slot unit's journal through the bakery-sudo helper
// (runtime systemd).
var Journal = define("journal", func(in LogsInput, c *call) { in.fill(c) })

// DockerLogs prints the slot container's own log, stdout and stderr kept
// apart (runtime docker), as bakery-agent so that a follow ends with the
// SSH session.
var DockerLogs = define("docker-logs", func(in LogsInput, c *call) { in.fill(c) })
