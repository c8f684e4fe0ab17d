package nodescript

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseSchedules(t *testing.T) {
	out := `sched tick 0123abcd
sched nightly 4567ef00
tz +0100
schedprop tick timer ActiveState=active
schedprop tick timer LastTriggerUSec=Mon 2026-12-07 04:58:48 CET
schedprop tick timer NextElapseUSecRealtime=Mon 2026-12-07 04:58:50 CET
schedprop nightly timer ActiveState=active
schedprop nightly timer LastTriggerUSec=n/a
schedprop nightly timer NextElapseUSecRealtime=@1796700000
schedprop tick service Result=exit-code
schedprop tick service ExecMainStatus=3
schedprop tick service ExecMainStartTimestamp=@1796615928
schedprop tick service ExecMainStartTimestampMonotonic=1000000
schedprop tick service ExecMainExitTimestampMonotonic=2500000
schedprop tick service ActiveState=failed
schedprop nightly service ActiveState=activating
schedprop nightly service Result=success
schedprop nightly service ExecMainStatus=0
schedprop nightly service ExecMainStartTimestamp=@1796615000
schedprop nightly service ExecMainStartTimestampMonotonic=5000000
schedprop nightly service ExecMainExitTimestampMonotonic=4000000
`
	o, err := ParseAppObservation(out)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	want := map[string]SchedObservation{
		"tick": {Hash: "0123abcd", TimerState: "active", ServiceState: "failed", Result: "exit-code", ExitStatus: 3,
			LastStart: time.Unix(1796615928, 0).UTC(), Duration: 1500 * time.Millisecond,
			NextRun: at("2026-12-07T03:58:50Z"), LastTrigger: at("2026-12-07T03:58:48Z"), startMono: 1000000, exitMono: 2500000},
		"nightly": {Hash: "4567ef00", TimerState: "active", ServiceState: "activating", Result: "success",
			LastStart: time.Unix(1796615000, 0).UTC(), NextRun: time.Unix(1796700000, 0).UTC(), startMono: 5000000, exitMono: 4000000},
	}
	if diff := cmp.Diff(want, o.Schedules, cmp.AllowUnexported(SchedObservation{})); diff != "" {
		t.Fatalf("schedules (-want +got):\n%s", diff)
	}
}
