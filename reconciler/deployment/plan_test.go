package deployment

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
)

const (
	c1 = "1111111111111111111111111111111111111111"
	c2 = "2222222222222222222222222222222222222222"
)

func desired() Desired {
	return Desired{
		App: "web", Commit: c2, Revision: 2, SpecHash: "spec2", BuildHash: "build1",
		SiteHash: func(slot string, port int) string { return "site" + string(rune('0'+port%10)) },
		PortMin:  20000, PortMax: 20009, KeepReleases: 3,
	}
}

// serving returns an observation of a node whose blue slot serves commit
// c on port 20000 with spec hash h, with the site in place.
func serving(c, h string) nodescript.Observed {
	return nodescript.Observed{
		State: &nf.AppState{App: "web", Active: nf.Blue, Revision: 1, Slots: map[string]nf.SlotState{
			nf.Blue: {Commit: c, Port: 20000, Revision: 1, SpecHash: h},
		}},
		Units:     map[string]string{nf.Blue: "active", nf.Green: "inactive"},
		SiteHash:  "site0",
		Releases:  map[string]string{nf.ReleaseID(c, "build1"): "build1"},
		UsedPorts: map[int]bool{},
	}
}

func TestPlan(t *testing.T) {
	rel2 := nf.ReleaseID(c2, "build1")
	rolloutTo := func(slot string, port int, old string, extra ...Action) []Action {
		p := append([]Action{}, extra...)
		rel := rel2
		for _, a := range extra {
			if a.Type == ActBuild {
				rel = a.Release
			}
		}
		p = append(p,
			Action{Type: ActInstall, Slot: slot, Commit: c2, Release: rel, Port: port},
			Action{Type: ActStart, Slot: slot, Commit: c2, Release: rel, Port: port},
			Action{Type: ActHealth, Slot: slot, Port: port},
			Action{Type: ActSwitch, Slot: slot, Commit: c2, Release: rel, Port: port},
		)
		if old != "" {
			p = append(p, Action{Type: ActDrain, Slot: old}, Action{Type: ActStop, Slot: old, Reason: "replaced"})
		}
		return append(p, Action{Type: ActPrune})
	}
	fetchBuild := []Action{{Type: ActFetch, Commit: c2}, {Type: ActBuild, Commit: c2, Release: rel2}}

	tests := []struct {
		name  string
		d     func(d *Desired)
		obs   func() nodescript.Observed
		want  []Action
		errIs error
	}{
		{
			name: "fresh node",
			obs: func() nodescript.Observed {
				return nodescript.Observed{Units: map[string]string{}, UsedPorts: map[int]bool{}}
			},
			want: rolloutTo(nf.Blue, 20000, "", fetchBuild...),
		},
		{
			name: "converged: empty plan",
			obs:  func() nodescript.Observed { return serving(c2, "spec2") },
			want: nil,
		},
		{
			name: "new commit goes to the idle slot",
			obs:  func() nodescript.Observed { return serving(c1, "spec2") },
			want: rolloutTo(nf.Green, 20001, nf.Blue, fetchBuild...),
		},
		{
			name: "spec-only change (env, command): same commit, no rebuild, new slot",
			obs: func() nodescript.Observed {
				o := serving(c2, "spec1")
				return o
			},
			want: rolloutTo(nf.Green, 20001, nf.Blue),
		},
		{
			name: "build commands changed: rebuild without fetch",
			d:    func(d *Desired) { d.BuildHash = "build2" },
			obs:  func() nodescript.Observed { return serving(c1, "spec2") },
			want: rolloutTo(nf.Green, 20001, nf.Blue, Action{Type: ActFetch, Commit: c2}, Action{Type: ActBuild, Commit: c2, Release: nf.ReleaseID(c2, "build2")}),
		},
		{
			name: "release checked out but its build failed before: build again",
			obs: func() nodescript.Observed {
				o := serving(c1, "spec2")
				o.Releases[rel2] = ""
				return o
			},
			want: rolloutTo(nf.Green, 20001, nf.Blue, fetchBuild...),
		},
		{
			name: "failed previous attempt left the idle slot running: restarted into it, then old stopped",
			obs: func() nodescript.Observed {
				o := serving(c1, "spec2")
				o.Units[nf.Green] = "failed"
				o.Releases[rel2] = "build1"
				o.State.Slots[nf.Green] = nf.SlotState{Commit: c2, Port: 20001, SpecHash: "spec2"}
				return o
			},
			want: rolloutTo(nf.Green, 20001, nf.Blue),
		},
		{
			name: "rollback: the idle slot still has the release, nothing is rebuilt",
			d:    func(d *Desired) { d.Commit = c1 },
			obs: func() nodescript.Observed {
				o := serving(c2, "spec2")
				o.State.Slots[nf.Green] = nf.SlotState{Commit: c1, Release: nf.ReleaseID(c1, "build1"), Port: 20001, SpecHash: "spec2"}
				o.Releases[nf.ReleaseID(c1, "build1")] = "build1"
				return o
			},
			want: []Action{
				{Type: ActInstall, Slot: nf.Green, Commit: c1, Release: nf.ReleaseID(c1, "build1"), Port: 20001},
				{Type: ActStart, Slot: nf.Green, Commit: c1, Release: nf.ReleaseID(c1, "build1"), Port: 20001},
				{Type: ActHealth, Slot: nf.Green, Port: 20001},
				{Type: ActSwitch, Slot: nf.Green, Commit: c1, Release: nf.ReleaseID(c1, "build1"), Port: 20001},
				{Type: ActDrain, Slot: nf.Blue}, {Type: ActStop, Slot: nf.Blue, Reason: "replaced"},
				{Type: ActPrune},
			},
		},
		{
			name: "restart: same revision into the other slot",
			d:    func(d *Desired) { d.NewSlot = true },
			obs:  func() nodescript.Observed { return serving(c2, "spec2") },
			want: rolloutTo(nf.Green, 20001, nf.Blue),
		},
		{
			name: "drift: active unit stopped",
			obs: func() nodescript.Observed {
				o := serving(c2, "spec2")
				o.Units[nf.Blue] = "inactive"
				return o
			},
			want: []Action{
				{Type: ActStart, Slot: nf.Blue, Commit: c2, Port: 20000, Reason: "active unit is inactive"},
				{Type: ActHealth, Slot: nf.Blue, Port: 20000},
			},
		},
		{
			name: "drift: nginx site deleted",
			obs: func() nodescript.Observed {
				o := serving(c2, "spec2")
				o.SiteHash = ""
				return o
			},
			want: []Action{{Type: ActSite, Slot: nf.Blue, Port: 20000, Reason: "nginx site missing"}},
		},
		{
			name: "drift: nginx site edited",
			obs: func() nodescript.Observed {
				o := serving(c2, "spec2")
				o.SiteHash = "edited"
				return o
			},
			want: []Action{{Type: ActSite, Slot: nf.Blue, Port: 20000, Reason: "nginx site differs from the generated one"}},
		},
		{
			name: "drift: inactive slot running",
			obs: func() nodescript.Observed {
				o := serving(c2, "spec2")
				o.Units[nf.Green] = "active"
				return o
			},
			want: []Action{{Type: ActStop, Slot: nf.Green, Reason: "inactive slot is running"}},
		},
		{
			name: "ports: another app holds the next port",
			obs: func() nodescript.Observed {
				o := serving(c1, "spec2")
				o.UsedPorts = map[int]bool{20001: true, 20002: true}
				return o
			},
			want: rolloutTo(nf.Green, 20003, nf.Blue, fetchBuild...),
		},
		{
			name: "ports: pinned",
			d:    func(d *Desired) { d.PinnedPort = 8000 },
			obs:  func() nodescript.Observed { return serving(c1, "spec2") },
			want: rolloutTo(nf.Green, 8001, nf.Blue, fetchBuild...),
		},
		{
			name: "ports: range exhausted",
			d:    func(d *Desired) { d.PortMax = 20001 },
			obs: func() nodescript.Observed {
				o := serving(c1, "spec2")
				o.UsedPorts = map[int]bool{20001: true}
				return o
			},
			errIs: ErrNoFreePort,
		},
		{
			name: "removed from the selector",
			d:    func(d *Desired) { d.Remove = true },
			obs:  func() nodescript.Observed { return serving(c2, "spec2") },
			want: []Action{{Type: ActRemove, Reason: "app removed from this node"}},
		},
		{
			name: "repair only: the last good revision's unit stopped is started again",
			d:    func(d *Desired) { d.RepairOnly = true },
			obs: func() nodescript.Observed {
				o := serving(c2, "spec2")
				o.Units[nf.Blue] = "failed"
				o.Units[nf.Green] = "active"
				o.SiteHash = ""
				return o
			},
			want: []Action{
				{Type: ActStart, Slot: nf.Blue, Commit: c2, Port: 20000, Reason: "active unit is failed"},
				{Type: ActHealth, Slot: nf.Blue, Port: 20000},
				{Type: ActSite, Slot: nf.Blue, Port: 20000, Reason: "nginx site missing"},
				{Type: ActStop, Slot: nf.Green, Reason: "inactive slot is running"},
			},
		},
		{
			name: "repair only: converged, empty plan",
			d:    func(d *Desired) { d.RepairOnly = true },
			obs:  func() nodescript.Observed { return serving(c2, "spec2") },
			want: nil,
		},
		{
			name: "repair only: the active slot runs another commit: no rollout",
			d:    func(d *Desired) { d.RepairOnly = true },
			obs: func() nodescript.Observed {
				o := serving(c1, "spec2")
				o.Units[nf.Blue] = "inactive"
				return o
			},
			want: nil,
		},
		{
			name: "repair only: the active slot runs another spec: no rollout",
			d:    func(d *Desired) { d.RepairOnly = true },
			obs: func() nodescript.Observed {
				o := serving(c2, "spec1")
				o.SiteHash = ""
				return o
			},
			want: nil,
		},
		{
			name: "repair only: fresh node: nothing is deployed",
			d:    func(d *Desired) { d.RepairOnly = true },
			obs: func() nodescript.Observed {
				return nodescript.Observed{Units: map[string]string{}, UsedPorts: map[int]bool{}}
			},
			want: nil,
		},
		{
			name: "repair only: a node the app leaves is not removed",
			d:    func(d *Desired) { d.RepairOnly, d.Remove = true, true },
			obs:  func() nodescript.Observed { return serving(c2, "spec2") },
			want: nil,
		},
		{
			name: "repair only: ignores a restart request",
			d:    func(d *Desired) { d.RepairOnly, d.NewSlot = true, true },
			obs:  func() nodescript.Observed { return serving(c2, "spec2") },
			want: nil,
		},
		{
			name: "removed and already gone: empty plan",
			d:    func(d *Desired) { d.Remove = true },
			obs:  func() nodescript.Observed { return nodescript.Observed{Units: map[string]string{}} },
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := desired()
			if tc.d != nil {
				tc.d(&d)
			}
			got, err := Plan(d, tc.obs())
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("err = %v, want %v", err, tc.errIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
