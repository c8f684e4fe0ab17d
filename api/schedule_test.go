package api

import (
	"strings"
	"testing"
	"time"
)

func TestCronToOnCalendar(t *testing.T) {
	for _, c := range []struct{ cron, want string }{
		{"* * * * *", "*-*-* *:*:00"},
		{"*/5 * * * *", "*-*-* *:0/5:00"},
		{"0 3 * * *", "*-*-* 03:00:00"},
		{"30 8 * * 1-5", "Mon,Tue,Wed,Thu,Fri *-*-* 08:30:00"},
		{"0 0 * * 0", "Sun *-*-* 00:00:00"},
		{"0 0 * * 7", "Sun *-*-* 00:00:00"},
		{"0 0 * * sat,SUN", "Sat,Sun *-*-* 00:00:00"},
		{"15,45 */2 1 * *", "*-*-01 0/2:15,45:00"},
		{"0 12 1 jan,jul *", "*-01,07-01 12:00:00"},
		{"0 0 1 */3 *", "*-1/3-01 00:00:00"},
		{"10-20/5 * * * *", "*-*-* *:10,15,20:00"},
		{"5/20 * * * *", "*-*-* *:05,25,45:00"},
		{"@hourly", "hourly"},
		{"@midnight", "daily"},
	} {
		got, err := CronToOnCalendar(c.cron)
		if err != nil || got != c.want {
			t.Errorf("CronToOnCalendar(%q) = %q, %v; want %q", c.cron, got, err, c.want)
		}
	}
	for _, bad := range []string{"60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
		"*/0 * * * *", "5-1 * * * *", "a * * * *", "* * 1 * 1", "1,,2 * * * *", "* * * *", "-1 * * * *", "@reboot"} {
		if got, err := CronToOnCalendar(bad); err == nil {
			t.Errorf("CronToOnCalendar(%q) = %q, want an error", bad, got)
		}
	}
}

func TestValidateCalendar(t *testing.T) {
	for _, ok := range []string{"hourly", "daily", "*-*-* 03:00:00", "Mon..Fri 08:30", "*:*:0/5", "*:0/15",
		"Sat,Sun *-*-* 10:00:00 UTC", "2027-01-01 00:00:00", "*-*-01 0/2:15,45:00", "12:00"} {
		if err := ValidateCalendar(ok); err != nil {
			t.Errorf("ValidateCalendar(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "every day", "*-*-* 25:00:00", "*-13-* 00:00", "Mon..Xyz 08:00", "*:*:0/0",
		"*-*-* 03:00:00; rm -rf /", "*-*-*  03:00", "$(id)", "*-*-* 03:00:00\nExecStart=x", "03:00 *-*-*",
		"*-*-* 03:00 Europe/Berlin", strings.Repeat("1", 101)} {
		if err := ValidateCalendar(bad); err == nil {
			t.Errorf("ValidateCalendar(%q) = nil, want an error", bad)
		}
	}
}

func TestScheduleValidation(t *testing.T) {
	d := validDeployment()
	d.Spec.Schedules = []Schedule{
		{Name: "ok", Schedule: "*/5 * * * *", Command: "true"},
		{Name: "Bad_Name", Schedule: "*:*:0/5", Command: "true"},
		{Name: "ok", Schedule: "nonsense here", Command: "", Timeout: &Duration{500 * time.Millisecond}, Concurrency: "Sometimes", Node: "two"},
		{Name: "this-name-is-much-too-long", Schedule: "hourly", Command: "x"},
	}
	d.Default()
	if d.Spec.Schedules[0].Concurrency != ConcurrencyForbid || d.Spec.Schedules[0].Node != ScheduleNodeOne || d.Spec.Schedules[0].Timeout.Duration != time.Hour {
		t.Errorf("defaults not applied: %+v", d.Spec.Schedules[0])
	}
	got := map[string]bool{}
	for _, e := range d.Validate() {
		got[e.Field] = true
	}
	for _, f := range []string{"spec.schedules[1].name", "spec.schedules[2].name", "spec.schedules[2].schedule", "spec.schedules[2].command",
		"spec.schedules[2].timeout", "spec.schedules[2].concurrency", "spec.schedules[2].node", "spec.schedules[3].name"} {
		if !got[f] {
			t.Errorf("no error for %s (got %v)", f, got)
		}
	}
	if got["spec.schedules[0].name"] || got["spec.schedules[0].schedule"] {
		t.Errorf("valid schedule refused: %v", got)
	}
}
