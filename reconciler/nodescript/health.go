package nodescript

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"bakery.dev/bakery/sshexec"
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
// not from another process holding the port. A failed check's last line
// on stderr says why (see HealthFailure).
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

// HealthError is a failed health check as the health script reports it:
// the URL, how many attempts failed and why the last one did ("last
// answer HTTP 500", "connection refused", "no answer within 2s", …).
type HealthError struct {
	// Verdict is the script's last word: "health check URL failed after
	// N attempts: WHY".
	Verdict string
	// Err is the script's error (its exit status).
	Err error
}

func (e *HealthError) Error() string { return e.Verdict }

func (e *HealthError) Unwrap() error { return e.Err }

// healthVerdict starts the line a failed health check ends with.
const healthVerdict = "bakery: health check "

// HealthFailure returns the HealthError that health's result res and error
// err report, or nil when the script gave no verdict (it did not run to
// its end: the connection broke, it was cancelled or timed out).
func HealthFailure(res sshexec.Result, err error) error {
	if err == nil {
		return nil
	}
	lines := bytes.Split(bytes.TrimRight(res.Stderr, "\n"), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		l := string(lines[i])
		if v, ok := strings.CutPrefix(l, healthVerdict); ok && strings.Contains(v, " failed after ") {
			return &HealthError{Verdict: "health check " + v, Err: err}
		}
	}
	return nil
}
