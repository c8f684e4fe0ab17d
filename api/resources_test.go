package api

import (
	"strings"
	"testing"
)

// TestPersistentAndResourcesValidation: spec.persistent and
// spec.resources errors name their field path.
func TestPersistentAndResourcesValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(d *Deployment)
		want   []string
	}{
		{"valid", func(d *Deployment) {
			d.Spec.Persistent = []Persistent{{Path: "uploads", Size: "1Gi"}, {Path: "var/db"}, {Path: "a_b-c.d/x"}}
			d.Spec.Resources = &Resources{Memory: "256Mi", CPU: "0.5", Tasks: 64}
		}, nil},
		{"valid other forms", func(d *Deployment) {
			d.Spec.Resources = &Resources{Memory: "1G", CPU: "500m"}
		}, nil},
		{"bad paths", func(d *Deployment) {
			d.Spec.Persistent = []Persistent{{Path: "/abs"}, {Path: "../up"}, {Path: "a/../b"}, {Path: ".git"}, {Path: "a:b"},
				{Path: "ok", Size: "lots"}, {Path: "ok/inner"}, {Path: "a//b"}, {Path: ""}, {Path: "x/"}}
		}, []string{"spec.persistent[0].path", "spec.persistent[1].path", "spec.persistent[2].path", "spec.persistent[3].path",
			"spec.persistent[4].path", "spec.persistent[5].size", "spec.persistent[6].path", "spec.persistent[7].path",
			"spec.persistent[8].path", "spec.persistent[9].path"}},
		{"too many", func(d *Deployment) {
			for i := range MaxPersistent + 1 {
				d.Spec.Persistent = append(d.Spec.Persistent, Persistent{Path: "d" + strings.Repeat("x", i)})
			}
		}, []string{"spec.persistent"}},
		{"bad resources", func(d *Deployment) {
			d.Spec.Resources = &Resources{Memory: "256MB", CPU: "0.505", Tasks: -1}
		}, []string{"spec.resources.memory", "spec.resources.cpu", "spec.resources.tasks"}},
		{"out of range", func(d *Deployment) {
			d.Spec.Resources = &Resources{Memory: "1Mi", CPU: "0", Tasks: MaxTasks + 1}
		}, []string{"spec.resources.memory", "spec.resources.cpu", "spec.resources.tasks"}},
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

func TestParseQuantities(t *testing.T) {
	for in, want := range map[string]int64{"256Mi": 256 << 20, "1G": 1e9, "1Gi": 1 << 30, "512": 512, "2Ki": 2048, "3T": 3e12} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.5G", "-1", "1g", "1GB", "1 G", "9999999999999999Ti"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
	for in, want := range map[string]int64{"0.5": 500, "2": 2000, "500m": 500, "1.25": 1250, "0.01": 10, "10m": 10} {
		if got, err := ParseCPU(in); err != nil || got != want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".5", "0.5000", "5M", "-1", "1e3", "0,5"} {
		if _, err := ParseCPU(in); err == nil {
			t.Errorf("ParseCPU(%q) accepted", in)
		}
	}
}
