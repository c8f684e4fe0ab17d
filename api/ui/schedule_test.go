package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
)

// TestDeploymentPageSchedules: the deployment page lists the schedules
// with their last run, its result and duration, and the next run.
func TestDeploymentPageSchedules(t *testing.T) {
	e := newEnv(t, false)
	d := deployment("hello")
	d.Spec.Schedules = []api.Schedule{{Name: "nightly", Schedule: "0 3 * * *", Command: "./cleanup"}}
	e.create(d)
	b := e.loggedIn()
	if _, body, _ := b.get("/ui/deployments/hello"); !strings.Contains(body, `id="schedules"`) || !strings.Contains(body, "not reported by the nodes yet") {
		t.Fatalf("deployment page before the nodes reported the schedule:\n%s", body)
	}
	o, err := e.st.Get(t.Context(), api.KindDeployment, "hello")
	if err != nil {
		t.Fatal(err)
	}
	d = o.(*api.Deployment)
	last := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	d.Status.Schedules = []api.ScheduleStatus{{Name: "nightly", Calendar: "*-*-* 03:00:00", Nodes: []string{"web-1"}, LastRun: &api.Time{Time: last},
		Node: "web-1", Result: "failed: exit status 3", Duration: &api.Duration{Duration: 1500 * time.Millisecond}, NextRun: &api.Time{Time: last.Add(24 * time.Hour)}}}
	if _, err := e.st.UpdateStatus(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	code, body, _ := b.get("/ui/deployments/hello")
	for _, want := range []string{"nightly", "*-*-* 03:00:00", "2026-12-07 03:00:00", "on web-1", "failed: exit status 3", "1.5s", "2026-12-08 03:00:00"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("deployment page lacks %q (%d):\n%s", want, code, body)
		}
	}
}
