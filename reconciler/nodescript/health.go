package nodescript

import (
	"strconv"
	"time"
)

// HealthInput is the input of health.
type HealthInput struct {
	Port int
	Path string // the health check's HTTP path
	// Timeout bounds one check; Interval is the pause between checks.
	Timeout, Interval time.Duration
	// Retries is how many failed checks after StartPeriod fail the step.
	Retries     int
	StartPeriod time.Duration // whole seconds count
	// Unit (runtime systemd) or Container (runtime docker) must be the one
	// answering; the other is empty.
	Unit, Container string
}

// Health polls the slot's health check URL on the node's loopback until it
// answers (exit 0) or Retries checks after StartPeriod failed (exit 1). An
// answer counts only when it comes from the slot's own unit or container,
// not from another process holding the port.
var Health = define("health", func(in HealthInput, c *call) {
	c.setInt("PORT", int64(in.Port))
	c.set("HPATH", in.Path)
	c.set("TIMEOUT", seconds(in.Timeout))
	c.set("INTERVAL", seconds(in.Interval))
	c.setInt("RETRIES", int64(in.Retries))
	c.setInt("GRACE", int64(in.StartPeriod.Seconds()))
	c.set("UNIT", in.Unit)
	c.set("CONTAINER", in.Container)
})

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }
