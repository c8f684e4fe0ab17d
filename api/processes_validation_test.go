package api

import (
	"strings"
	"testing"
	"time"
)

// TestProcessesValidation: spec.processes errors name their field path; a
// worker-only app needs no run.command but may have no ingress.
func TestProcessesValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(d *Deployment)
		want   []string // field paths, in order
	}{
		{"valid", func(d *Deployment) {
			d.Spec.Processes = []Process{{Name: "worker", Command: "node worker.js", Replicas: 3, StopTimeout: &Duration{30 * time.Second}, HealthCheck: &ProcessHealthCheck{Exec: "test -f /tmp/ok"}}}
		}, nil},
		{"worker-only", func(d *Deployment) {
			d.Spec.Run.Command, d.Spec.Ingress = "", nil
			d.Spec.Processes = []Process{{Name: "worker", Command: "w"}}
		}, nil},
		{"worker-only with ingress", func(d *Deployment) {
			d.Spec.Run.Command, d.Spec.Ingress = "", &Ingress{Hosts: []string{"a.example.test"}}
			d.Spec.Processes = []Process{{Name: "worker", Command: "w"}}
		}, []string{"spec.ingress"}},
		{"bad fields", func(d *Deployment) {
			d.Spec.Processes = []Process{
				{Name: "worker", Command: "w"},
				{Name: "worker", Command: " ", Replicas: 100},
				{Name: "a-blue", Command: "w", StopTimeout: &Duration{1500 * time.Millisecond}},
				{Name: strings.Repeat("x", 21), Command: "w", HealthCheck: &ProcessHealthCheck{}},
			}
		}, []string{"spec.processes[1].name", "spec.processes[1].command", "spec.processes[1].replicas",
			"spec.processes[2].name", "spec.processes[2].stopTimeout", "spec.processes[3].name", "spec.processes[3].healthCheck.exec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := validDeployment()
			tc.mutate(d)
			d.Default()
			var got []string
			for _, e := range d.Validate() {
				got = append(got, e.Field)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("errors at %q, want %q (%v)", got, tc.want, d.Validate())
			}
		})
	}
}
