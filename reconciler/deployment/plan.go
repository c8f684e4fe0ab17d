package deployment

import (
	"errors"
	"fmt"
	"time"

	"bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
)

// ActionType names one step of a plan.
type ActionType string

// Action types, in the order a rollout uses them.
const (
	// ActFetch ships the commit to the node's bare repository.
	ActFetch ActionType = "fetch"
	// ActBuild checks the commit out into its release directory and runs
	// the install, test and build commands there.
	ActBuild ActionType = "build"
	// ActInstall writes a slot's env file, run script and unit.
	ActInstall ActionType = "install"
	// ActStart (re)starts a slot.
	ActStart ActionType = "start"
	// ActHealth checks a slot over HTTP from the node until it passes.
	ActHealth ActionType = "health"
	// ActSwitch points nginx at a slot and records it active in state.json.
	ActSwitch ActionType = "switch"
	// ActDrain waits for connections to the old slot to finish.
	ActDrain ActionType = "drain"
	// ActStop stops (and disables) a slot.
	ActStop ActionType = "stop"
	// ActSite rewrites the nginx site for the active slot (drift repair).
	ActSite ActionType = "site"
	// ActPrune removes releases beyond keepReleases.
	ActPrune ActionType = "prune"
	// ActRemove removes the app from the node entirely.
	ActRemove ActionType = "remove"
	// ActCert obtains a host's certificate with certbot (HTTP-01 through
	// the site's challenge location).
	ActCert ActionType = "certificate"
	// ActRenew renews a host's certificate and reloads nginx.
	ActRenew ActionType = "renew"
	// ActProcs starts a slot's processes (spec.processes), instances
	// 1..replicas of each, stops instances beyond that, and waits for
	// their health checks.
	ActProcs ActionType = "processes"
	// ActStopProcs stops a slot's processes (SIGTERM and each one's
	// stopTimeout to finish its job) and removes their units.
	ActStopProcs ActionType = "stop-processes"
	// ActSchedule installs (or rewrites) a schedule's timer, service and
	// script for the active slot's release.
	ActSchedule ActionType = "schedule"
	// ActUnschedule removes a schedule the node should not run.
	ActUnschedule ActionType = "unschedule"
)

// Action is one idempotent step on one node.
type Action struct {
	Type    ActionType
	Slot    string `json:",omitempty"`
	Commit  string `json:",omitempty"`
	Release string `json:",omitempty"`
	Port    int    `json:",omitempty"`
	// Host is the host a certificate step is for.
	Host string `json:",omitempty"`
	// Schedule is the schedule a schedule step is for.
	Schedule string `json:",omitempty"`
	// Reason says why the step is needed (logged with it).
	Reason string `json:",omitempty"`
}

func (a Action) String() string {
	s := string(a.Type)
	if a.Slot != "" {
		s += " " + a.Slot
	}
	if a.Host != "" {
		s += " " + a.Host
	}
	if a.Schedule != "" {
		s += " " + a.Schedule
	}
	if a.Reason != "" {
		s += " (" + a.Reason + ")"
	}
	return s
}

// Desired is what one node should run for a deployment.
type Desired struct {
	App    string
	Commit string
	// Revision is the deployment revision the commit belongs to.
	Revision int64
	// SpecHash identifies the runtime-relevant spec (command, env, pinned
	// port); BuildHash the build commands.
	SpecHash, BuildHash string
	// SiteHash is the hash of the nginx site for a slot on a port.
	SiteHash func(slot string, port int) string
	// PinnedPort, when non-zero, is the blue slot's port (green: +1).
	PinnedPort int
	// PortMin and PortMax bound allocated ports; the search for a free one
	// starts at PortStart (wrapping around), so that different apps start
	// in different places and control planes rarely race for one port.
	PortMin, PortMax, PortStart int
	KeepReleases                int
	// NewSlot forces a rollout into the idle slot even when the active one
	// already runs the desired commit and spec (restart with no downtime).
	NewSlot bool
	// Remove asks for the app to be removed from the node.
	Remove bool
	// RepairOnly limits the plan to drift repairs of an active slot that
	// already runs Commit with SpecHash (start its unit or container,
	// rewrite its site, its certificates, stop the idle slot): a node
	// whose active slot runs anything else, or has none, or that the app
	// leaves (Remove), gets an empty plan. It keeps the last good
	// revision serving while a failed one stands, never rolling out.
	RepairOnly bool
	// TLSHosts are the hosts that need a certificate (ingress.tls).
	TLSHosts []string
	// WorkerOnly says the deployment has no web process
	// (api.DeploymentSpec.HasWeb): no port, slot unit, HTTP health check
	// or site.
	WorkerOnly bool
	// Procs are the processes every slot runs (spec.processes).
	Procs []ProcGoal
	// RenewBefore is how long before its expiry a certificate is renewed;
	// Now is the time Plan compares expiry dates with.
	RenewBefore time.Duration
	Now         time.Time
	// Schedules are the schedules this node runs (node: all, or node:
	// one on the node chosen for them), in the active slot's release.
	Schedules []SchedSpec
}

// ProcGoal is how many instances of a process run on a node.
type ProcGoal struct {
	Name     string
	Replicas int
}

// procsConverged reports whether slot runs exactly instances 1..replicas
// of each desired process and nothing else.
func procsConverged(d Desired, obs nodescript.Observed, slot string) (bool, string) {
	got := obs.Procs[slot]
	want := map[string]int{}
	for _, p := range d.Procs {
		want[p.Name] = p.Replicas
		for i := 1; i <= p.Replicas; i++ {
			if st := got[p.Name][i]; !running(st) {
				return false, fmt.Sprintf("process %s@%d is %s", p.Name, i, orUnknown(st))
			}
		}
	}
	for name, insts := range got {
		for i, st := range insts {
			if running(st) && i > want[name] {
				return false, fmt.Sprintf("process %s@%d runs beyond the %d wanted", name, i, want[name])
			}
		}
	}
	return true, ""
}

// procsRunning reports whether a process instance of slot runs.
func procsRunning(obs nodescript.Observed, slot string) bool {
	for _, insts := range obs.Procs[slot] {
		for _, st := range insts {
			if running(st) {
				return true
			}
		}
	}
	return false
}

func running(state string) bool {
	return state == "active" || state == "activating" || state == "reloading"
}

// Plan returns the actions that bring one node from obs to d, in order.
// An empty plan means converged: nothing is executed. Plan is pure.
func Plan(d Desired, obs nodescript.Observed) ([]Action, error) {
	if d.RepairOnly {
		if d.Remove || obs.State == nil || obs.State.Active == "" {
			return nil, nil
		}
		a := obs.State.Slots[obs.State.Active]
		if a.Commit != d.Commit || a.SpecHash != d.SpecHash {
			return nil, nil
		}
		return repairs(d, obs, obs.State.Active, a), nil
	}
	if d.Remove {
		if obs.State == nil && obs.SiteHash == "" && !running(obs.Units[nodefiles.Blue]) && !running(obs.Units[nodefiles.Green]) && len(obs.Releases) == 0 &&
			!procsRunning(obs, nodefiles.Blue) && !procsRunning(obs, nodefiles.Green) && len(obs.Schedules) == 0 {
			return nil, nil
		}
		return []Action{{Type: ActRemove, Reason: "app removed from this node"}}, nil
	}
	active := ""
	var slots map[string]nodefiles.SlotState
	if obs.State != nil {
		active = obs.State.Active
		slots = obs.State.Slots
	}
	if active != "" && !d.NewSlot {
		a := slots[active]
		if a.Commit == d.Commit && a.SpecHash == d.SpecHash {
			return repairs(d, obs, active, a), nil
		}
	}

	// A rollout into the idle slot.
	idle := nodefiles.Other(active)
	port := 0
	if !d.WorkerOnly {
		if port = allocatePort(d, obs, idle); port == 0 {
			return nil, ErrNoFreePort
		}
	}
	var plan []Action
	rel := nodefiles.ReleaseID(d.Commit, d.BuildHash)
	if obs.Releases[rel] != d.BuildHash {
		// Not built yet: ship the commit (nothing moves when the node
		// has it already) and build it into its own release directory.
		plan = append(plan,
			Action{Type: ActFetch, Commit: d.Commit},
			Action{Type: ActBuild, Commit: d.Commit, Release: rel})
	}
	plan = append(plan, Action{Type: ActInstall, Slot: idle, Commit: d.Commit, Release: rel, Port: port})
	if !d.WorkerOnly {
		plan = append(plan,
			Action{Type: ActStart, Slot: idle, Commit: d.Commit, Release: rel, Port: port},
			Action{Type: ActHealth, Slot: idle, Port: port})
	}
	plan = append(plan, Action{Type: ActSwitch, Slot: idle, Commit: d.Commit, Release: rel, Port: port})
	// The schedules switch with the web process: they run in the new
	// active release from here on.
	plan = append(plan, schedActions(d, obs, idle, rel)...)
	// The new release's processes start after the web switch; the old
	// ones stop once the new ones are healthy.
	if len(d.Procs) > 0 {
		plan = append(plan, Action{Type: ActProcs, Slot: idle, Commit: d.Commit, Release: rel})
	}
	if active != "" && len(obs.Procs[active]) > 0 {
		plan = append(plan, Action{Type: ActStopProcs, Slot: active, Reason: "replaced"})
	}
	if active != "" {
		if !d.WorkerOnly || running(obs.Units[active]) {
			plan = append(plan, Action{Type: ActDrain, Slot: active}, Action{Type: ActStop, Slot: active, Reason: "replaced"})
		}
	} else if running(obs.Units[idle]) || running(obs.Units[nodefiles.Other(idle)]) {
		// No recorded active slot, but a unit runs: a crashed first
		// rollout. The start above restarts idle; stop the other.
		if running(obs.Units[nodefiles.Other(idle)]) {
			plan = append(plan, Action{Type: ActStop, Slot: nodefiles.Other(idle), Reason: "not recorded active"})
		}
	}
	plan = append(plan, Action{Type: ActPrune})
	if certs := certActions(d, obs); len(certs) > 0 {
		plan = append(plan, certs...)
		if needsSite(certs) {
			plan = append(plan, Action{Type: ActSite, Slot: idle, Port: port, Reason: "serve HTTPS with the new certificates"})
		}
	}
	return plan, nil
}

// certActions returns the certificate steps: obtain a missing one, renew
// one that expires within RenewBefore.
func certActions(d Desired, obs nodescript.Observed) []Action {
	var plan []Action
	for _, h := range d.TLSHosts {
		c, ok := obs.Certs[h]
		switch {
		case !ok:
			plan = append(plan, Action{Type: ActCert, Host: h, Reason: "no certificate yet"})
		case c.NotAfter.Sub(d.Now) < d.RenewBefore:
			plan = append(plan, Action{Type: ActRenew, Host: h, Reason: "expires " + c.NotAfter.UTC().Format(time.RFC3339)})
		}
	}
	return plan
}

// needsSite reports whether the site must be rewritten after certs: a new
// certificate adds an HTTPS server (a renewed one only needs the reload
// the renew step does).
func needsSite(certs []Action) bool {
	for _, a := range certs {
		if a.Type == ActCert {
			return true
		}
	}
	return false
}

// ErrNoFreePort means every port of the range is taken on the node.
var ErrNoFreePort = errors.New("no free port in the node's port range")

// repairs returns the drift repairs for a node whose active slot already
// runs the desired revision.
func repairs(d Desired, obs nodescript.Observed, active string, a nodefiles.SlotState) []Action {
	var plan []Action
	certs := certActions(d, obs)
	if st := obs.Units[active]; !d.WorkerOnly && !running(st) {
		plan = append(plan,
			Action{Type: ActStart, Slot: active, Commit: a.Commit, Release: a.Release, Port: a.Port, Reason: fmt.Sprintf("active unit is %s", orUnknown(st))},
			Action{Type: ActHealth, Slot: active, Port: a.Port})
	}
	plan = append(plan, certs...)
	if d.SiteHash != nil && obs.SiteHash != d.SiteHash(active, a.Port) {
		reason := "nginx site differs from the generated one"
		switch {
		case obs.SiteHash == "":
			reason = "nginx site missing"
		case needsSite(certs):
			reason = "serve HTTPS with the new certificates"
		}
		plan = append(plan, Action{Type: ActSite, Slot: active, Port: a.Port, Reason: reason})
	}
	if ok, why := procsConverged(d, obs, active); !ok {
		plan = append(plan, Action{Type: ActProcs, Slot: active, Commit: a.Commit, Release: a.Release, Reason: why})
	}
	if other := nodefiles.Other(active); running(obs.Units[other]) {
		plan = append(plan, Action{Type: ActStop, Slot: other, Reason: "inactive slot is running"})
	}
	if other := nodefiles.Other(active); procsRunning(obs, other) {
		plan = append(plan, Action{Type: ActStopProcs, Slot: other, Reason: "inactive slot's processes are running"})
	}
	plan = append(plan, schedActions(d, obs, active, a.Release)...)
	return plan
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// allocatePort picks the port of slot: the pinned one; else the one the
// slot had, if no other app took it; else the lowest free port in range
// that is neither used by another app nor by the other slot.
func allocatePort(d Desired, obs nodescript.Observed, slot string) int {
	if d.PinnedPort > 0 {
		if slot == nodefiles.Green {
			return d.PinnedPort + 1
		}
		return d.PinnedPort
	}
	var otherPort int
	if obs.State != nil {
		if s, ok := obs.State.Slots[slot]; ok && s.Port != 0 && !obs.UsedPorts[s.Port] && s.Port >= d.PortMin && s.Port <= d.PortMax {
			return s.Port
		}
		otherPort = obs.State.Slots[nodefiles.Other(slot)].Port
	}
	n := d.PortMax - d.PortMin + 1
	start := d.PortStart
	if start < d.PortMin || start > d.PortMax {
		start = d.PortMin
	}
	for i := 0; i < n; i++ {
		p := d.PortMin + (start-d.PortMin+i)%n
		if p != otherPort && !obs.UsedPorts[p] {
			return p
		}
	}
	return 0
}
