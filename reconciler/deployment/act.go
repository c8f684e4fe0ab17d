package deployment

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/source"
	"bakery.dev/bakery/sshexec"
)

// SHA256Hex returns the hex SHA-256 of s (what `sha256sum` prints).
func SHA256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Runtime is how a slot's process is installed, started and stopped on a
// node. The systemd runtime is the one implemented here; docker slots in
// behind the same interface.
type Runtime interface {
	// Install writes what the slot needs to start (unit, env and run files).
	Install(ctx context.Context, n *nodeRun, a Action) error
	// Start (re)starts the slot and makes it start at boot.
	Start(ctx context.Context, n *nodeRun, a Action) error
	// Stop stops the slot and keeps it from starting at boot.
	Stop(ctx context.Context, n *nodeRun, slot string) error
	// Remove deletes everything the runtime installed for the app.
	Remove(ctx context.Context, n *nodeRun) error
}

// Ingress routes traffic to the active slot.
type Ingress interface {
	// Switch points traffic at slot's port, reloads the proxy and returns
	// once the proxy really sends requests there. Hosts with a
	// certificate (n.obs.Certs) are served over HTTPS.
	Switch(ctx context.Context, n *nodeRun, slot string, port int) error
	// Certificate obtains host's certificate (ingress.tls), serving the
	// ACME challenge first, and records it in n.obs.Certs.
	Certificate(ctx context.Context, n *nodeRun, host string) error
	// Renew renews host's certificate, reloads the proxy and records the
	// new certificate in n.obs.Certs.
	Renew(ctx context.Context, n *nodeRun, host string) error
	// Remove deletes the app's routing.
	Remove(ctx context.Context, n *nodeRun) error
	// Hash returns the hash of the site generated for slot's port, as
	// the observe script reports it, once every TLS host has its
	// certificate.
	Hash(n *nodeRun, slot string, port int) string
}

// nodeRun carries what actions on one node need.
type nodeRun struct {
	node    string
	app     string
	spec    *api.DeploymentSpec
	env     map[string]string // the app's environment (from the spec)
	desired Desired
	obs     nodescript.AppObservation
	ex      sshexec.Executor
	mirrors *source.Mirrors
	log     func(stream, text string) // rollout log
	timeout time.Duration             // per step
	// purgeData has a removal delete the app's persistent directories
	// too (`bakery delete --purge-data`).
	purgeData bool
	// prev is the runtime the app ran under on this node when it differs
	// from the spec's (the runtime was changed): slots this run did not
	// install are stopped, and a removal cleaned up, with it too.
	prev      Runtime
	installed map[string]bool // slots installed by this run
	// ship is the release shipment this node packs or receives
	// (spec.build.on one; ship.go), or nil.
	ship *shipment
	// acme is the ACME directory URL certificates come from.
	acme string
}

// run runs a node script on the node, streaming its output into the
// rollout log.
func run[In any](ctx context.Context, n *nodeRun, s nodescript.Script[In], in In) (sshexec.Result, error) {
	cmd, err := s.Command(in)
	if err != nil {
		return sshexec.Result{}, err
	}
	cmd.Timeout = n.timeout
	cmd.Sink = sshexec.SinkFunc(func(l sshexec.Line) {
		n.log(l.Stream.String(), l.Text)
	})
	return n.ex.Run(ctx, cmd)
}

func (n *nodeRun) logf(format string, args ...any) {
	n.log(api.StreamBakery, fmt.Sprintf(format, args...))
}

// act executes one action.
func (n *nodeRun) act(ctx context.Context, rt Runtime, ing Ingress, a Action) error {
	switch a.Type {
	case ActFetch:
		return n.fetch(ctx, a.Commit)
	case ActBuild:
		if b, ok := rt.(builder); ok {
			return b.Build(ctx, n, a.Commit, a.Release)
		}
		return n.build(ctx, a.Commit, a.Release)
	case ActPack:
		return n.packStep(ctx)
	case ActShip:
		return n.receive(ctx, rt, a)
	case ActInstall:
		if n.installed == nil {
			n.installed = map[string]bool{}
		}
		n.installed[a.Slot] = true
		return rt.Install(ctx, n, a)
	case ActStart:
		if err := rt.Start(ctx, n, a); err != nil {
			return err
		}
		n.obs.Units[a.Slot] = "active"
		return nil
	case ActHealth:
		return n.health(ctx, a.Slot, a.Port)
	case ActSwitch:
		if !n.desired.WorkerOnly {
			if err := ing.Switch(ctx, n, a.Slot, a.Port); err != nil {
				return err
			}
			n.obs.SiteHash = ing.Hash(n, a.Slot, a.Port)
		} else {
			n.logf("no web process: the %s slot becomes active without an nginx site", a.Slot)
		}
		return n.writeState(ctx, a)
	case ActProcs:
		return n.startProcs(ctx, rt, a)
	case ActStopProcs:
		return n.stopProcs(ctx, rt, a.Slot)
	case ActDrain:
		return n.drain(ctx, a.Slot)
	case ActStop:
		return n.stop(ctx, rt, a.Slot)
	case ActSite:
		if err := ing.Switch(ctx, n, a.Slot, a.Port); err != nil {
			return err
		}
		n.obs.SiteHash = ing.Hash(n, a.Slot, a.Port)
		return nil
	case ActPrune:
		return n.pruneReleases(ctx, rt)
	case ActCert:
		return ing.Certificate(ctx, n, a.Host)
	case ActRenew:
		return ing.Renew(ctx, n, a.Host)
	case ActRemove:
		return n.removeApp(ctx, rt, ing)
	case ActSchedule:
		return n.schedule(ctx, a)
	case ActUnschedule:
		return n.unschedule(ctx, a.Schedule)
	}
	return fmt.Errorf("unknown action %q", a.Type)
}

// procRunner is a runtime that runs a slot's processes (spec.processes).
type procRunner interface {
	// StartProcs runs instances 1..replicas of each process of a.Slot
	// and stops the others.
	StartProcs(ctx context.Context, n *nodeRun, a Action) error
	// StopProcs stops every process of slot (SIGTERM, stopTimeout).
	StopProcs(ctx context.Context, n *nodeRun, slot string) error
}

// startProcs starts a slot's processes and records them running.
func (n *nodeRun) startProcs(ctx context.Context, rt Runtime, a Action) error {
	pr, ok := rt.(procRunner)
	if !ok {
		return fmt.Errorf("runtime %s does not run spec.processes", n.spec.Runtime)
	}
	start := time.Now()
	if err := pr.StartProcs(ctx, n, a); err != nil {
		return err
	}
	got := map[string]map[int]string{}
	var names []string
	for _, p := range n.desired.Procs {
		got[p.Name] = map[int]string{}
		for i := 1; i <= p.Replicas; i++ {
			got[p.Name][i] = "active"
		}
		names = append(names, fmt.Sprintf("%s×%d", p.Name, p.Replicas))
	}
	n.obs.Procs[a.Slot] = got
	n.logf("processes of the %s slot running: %s (%s)", a.Slot, strings.Join(names, ", "), time.Since(start).Round(time.Millisecond))
	for _, p := range n.spec.Processes {
		if p.HealthCheck != nil {
			if err := n.procHealth(ctx, a, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// minExecTimeout bounds one attempt of a process's health check at least:
// starting the command (a transient unit, or a container under docker)
// takes seconds on a loaded node, which the HTTP check's timeout is not
// meant for.
const minExecTimeout = 10 * time.Second

// procHealth runs a process's healthCheck.exec in its release with the
// slot's environment (the helper's run verb as the app's user, or docker
// run --rm of the release's image) until it exits 0: at most
// spec.healthCheck.retries times, spec.healthCheck.interval apart, each
// bounded by spec.healthCheck.timeout but at least minExecTimeout.
func (n *nodeRun) procHealth(ctx context.Context, a Action, p api.Process) error {
	h := n.spec.HealthCheck
	retries, interval, timeout := max(h.Retries, 1), api.DefaultHealthInterval, api.DefaultHealthTimeout
	if h.Interval != nil {
		interval = h.Interval.Duration
	}
	if h.Timeout != nil {
		timeout = h.Timeout.Duration
	}
	timeout = max(timeout, minExecTimeout)
	in := nodescript.RunInput{App: n.app, Slot: a.Slot, Commit: a.Commit, Release: a.Release, Script: "health-" + a.Slot + "-" + p.Name + ".sh",
		Command: p.HealthCheck.Exec, TimeoutSec: max(int((timeout+time.Second-1)/time.Second), 1), Limits: nf.LimitsOf(n.spec)}
	var last error
	for i := 1; i <= retries; i++ {
		script := nodescript.RunCommand
		if isDocker(n.spec) {
			script, in.Network = nodescript.DockerRun, n.docker().Network
		}
		res, err := run(ctx, n, script, in)
		if err == nil {
			n.logf("process %s is healthy (%s passed, attempt %d)", p.Name, p.HealthCheck.Exec, i)
			return nil
		}
		last = fmt.Errorf("%w: %s", err, truncateOutput(string(res.Stdout)+string(res.Stderr)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	return fmt.Errorf("process %s: health check %q failed %d times: %w", p.Name, p.HealthCheck.Exec, retries, last)
}

// truncateOutput keeps the end of a command's output for an error.
func truncateOutput(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = "…" + s[len(s)-300:]
	}
	return s
}

// stopProcs stops a slot's processes: each gets SIGTERM and its
// stopTimeout to finish its job.
func (n *nodeRun) stopProcs(ctx context.Context, rt Runtime, slot string) error {
	if n.prev != nil && !n.installed[slot] {
		rt = n.prev
	}
	pr, ok := rt.(procRunner)
	if !ok {
		return nil // nothing of this runtime's to stop
	}
	start := time.Now()
	if err := pr.StopProcs(ctx, n, slot); err != nil {
		return err
	}
	delete(n.obs.Procs, slot)
	n.logf("processes of the %s slot stopped (%s)", slot, time.Since(start).Round(time.Millisecond))
	return nil
}

// drain waits the strategy's drain time before the old slot stops.
func (n *nodeRun) drain(ctx context.Context, slot string) error {
	d := n.spec.Strategy.Drain.Duration
	n.logf("draining %s slot for %s", slot, d)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// stop stops a slot, under the runtime the app ran under before when the
// slot was not installed by this rollout.
func (n *nodeRun) stop(ctx context.Context, rt Runtime, slot string) error {
	if n.prev != nil && !n.installed[slot] {
		rt = n.prev // a slot of the runtime the app ran under before
	}
	if err := rt.Stop(ctx, n, slot); err != nil {
		return err
	}
	n.obs.Units[slot] = "inactive"
	return nil
}

// pruneReleases deletes old releases, and old images under docker.
func (n *nodeRun) pruneReleases(ctx context.Context, rt Runtime) error {
	if err := n.prune(ctx); err != nil {
		return err
	}
	if p, ok := rt.(imagePruner); ok {
		return p.PruneImages(ctx, n)
	}
	return nil
}

// removeApp removes the app from the node: its slots (under both
// runtimes when it changed), its site and its directory.
func (n *nodeRun) removeApp(ctx context.Context, rt Runtime, ing Ingress) error {
	if len(n.obs.Schedules) > 0 {
		if err := n.unschedule(ctx, ""); err != nil {
			return err
		}
	}
	if err := rt.Remove(ctx, n); err != nil {
		return err
	}
	if n.prev != nil {
		if err := n.prev.Remove(ctx, n); err != nil {
			return err
		}
	}
	if err := ing.Remove(ctx, n); err != nil {
		return err
	}
	_, err := run(ctx, n, nodescript.RemoveApp, nodescript.AppInput{App: n.app})
	return err
}

func (n *nodeRun) fetch(ctx context.Context, commit string) error {
	bundle, size, cleanup, err := n.mirrors.Bundle(ctx, n.spec.Source.Repo, commit, n.obs.Haves)
	if errors.Is(err, source.ErrUpToDate) {
		n.logf("node already has commit %s", api.ShortCommit(commit))
		return nil
	}
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer cleanup()
	if _, err := run(ctx, n, nodescript.AppDir, nodescript.AppInput{App: n.app}); err != nil {
		return err
	}
	f, err := os.Open(bundle)
	if err != nil {
		return err
	}
	defer f.Close()
	remote := path.Join(nf.AppDir(n.app), ".incoming-"+commit+".bundle")
	n.logf("shipping commit %s to the node (%d bytes)", api.ShortCommit(commit), size)
	if err := n.ex.WriteFile(ctx, sshexec.File{Path: remote, Mode: 0o600, Reader: f, Size: size}); err != nil {
		return fmt.Errorf("upload bundle: %w", err)
	}
	_, err = run(ctx, n, nodescript.Fetch, nodescript.FetchInput{App: n.app, Bundle: remote, Commit: commit})
	return err
}

// checkout checks commit out into the release's directory.
func (n *nodeRun) checkout(ctx context.Context, commit, release string) error {
	if _, err := run(ctx, n, nodescript.Checkout, nodescript.CheckoutInput{App: n.app, Release: release, Commit: commit}); err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	return nil
}

// build runs install, test and build as the app's own user: the node's
// helper (bakery-sudo build) runs the script it is given on stdin in the
// release directory with a clean environment, so the spec's environment
// and commands travel in the script (quoted), never on a command line.
func (n *nodeRun) build(ctx context.Context, commit, release string) error {
	if err := n.checkout(ctx, commit, release); err != nil {
		return err
	}
	_, err := run(ctx, n, nodescript.Build, nodescript.BuildInput{App: n.app, Release: release,
		Install: n.spec.Build.Install, Test: n.spec.Build.Test, Build: n.spec.Build.Build, BuildHash: n.desired.BuildHash, Env: n.env})
	return err
}

func (n *nodeRun) health(ctx context.Context, slot string, port int) error {
	h := n.spec.HealthCheck
	unit, container := nf.UnitName(n.app, slot), ""
	if isDocker(n.spec) {
		unit, container = "", nf.ContainerName(n.app, slot)
	}
	res, err := run(ctx, n, nodescript.Health, nodescript.HealthInput{Port: port, Path: h.Path,
		Timeout: h.Timeout.Duration, Interval: h.Interval.Duration, Retries: h.Retries, StartPeriod: h.StartPeriod.Duration,
		Unit: unit, Container: container})
	if herr := nodescript.HealthFailure(res, err); herr != nil {
		return herr // names the URL, the attempts and the last answer
	}
	if err != nil {
		return fmt.Errorf("health check http://127.0.0.1:%d%s failed: %w", port, h.Path, err)
	}
	return nil
}

func (n *nodeRun) writeState(ctx context.Context, a Action) error {
	st := &nf.AppState{App: n.app, Slots: map[string]nf.SlotState{}}
	if n.obs.State != nil {
		for k, v := range n.obs.State.Slots {
			st.Slots[k] = v
		}
	}
	st.Active = a.Slot
	st.Revision = n.desired.Revision
	st.Dockerized = isDocker(n.spec)
	st.Slots[a.Slot] = nf.SlotState{Commit: a.Commit, Release: a.Release, Port: a.Port, Revision: n.desired.Revision, SpecHash: n.desired.SpecHash}
	n.obs.State = st
	return n.ex.WriteFile(ctx, sshexec.File{Path: nf.StatePath(n.app), Mode: 0o644, Content: st.Marshal()})
}

// prune removes releases beyond keepReleases, never one a slot uses.
func (n *nodeRun) prune(ctx context.Context) error {
	keep := map[string]bool{}
	if n.obs.State != nil {
		for _, s := range n.obs.State.Slots {
			keep[s.Release] = true
			keep[s.Commit] = true // a release directory named by its commit alone
		}
	}
	keep[nf.ReleaseID(n.desired.Commit, n.desired.BuildHash)] = true
	var others []string
	for c := range n.obs.Releases {
		if !keep[c] {
			others = append(others, c)
		}
	}
	sort.Strings(others)
	budget := n.desired.KeepReleases - len(keep)
	if budget < 0 {
		budget = 0
	}
	if len(others) <= budget {
		return nil
	}
	// Keep the newest others by mtime, on the node.
	var protect []string
	for c := range keep {
		protect = append(protect, c)
	}
	_, err := run(ctx, n, nodescript.Prune, nodescript.PruneInput{App: n.app, Keep: budget, Protect: protect})
	return err
}

// systemdRuntime runs slots as systemd units through bakery-sudo.
type systemdRuntime struct{}

func (systemdRuntime) Install(ctx context.Context, n *nodeRun, a Action) error {
	if _, err := run(ctx, n, nodescript.SystemdInstallEnv, nodescript.SystemdEnvInput{App: n.app, Slot: a.Slot, EnvFile: nf.EnvFile(n.env)}); err != nil {
		return fmt.Errorf("env file: %w", err)
	}
	if err := installProcs(ctx, n, a); err != nil {
		return err
	}
	if n.desired.WorkerOnly {
		return nil
	}
	if err := n.ex.WriteFile(ctx, sshexec.File{Path: nf.RunScriptPath(n.app, a.Slot), Mode: 0o644, Content: []byte(nf.RunScript(n.spec.Run.Command))}); err != nil {
		return fmt.Errorf("run script: %w", err)
	}
	// The helper renders the unit itself from these parameters (nodefiles.Unit
	// renders the same text): the app runs as its own user, sandboxed.
	_, err := run(ctx, n, nodescript.SystemdInstallUnit, nodescript.SystemdUnitInput{Unit: nf.Slot{App: n.app, Slot: a.Slot, Release: a.Release, Port: a.Port, Limits: nf.LimitsOf(n.spec)}})
	return err
}

func (systemdRuntime) Start(ctx context.Context, n *nodeRun, a Action) error {
	_, err := run(ctx, n, nodescript.SystemdStart, nodescript.SlotInput{App: n.app, Slot: a.Slot})
	return err
}

func (systemdRuntime) Stop(ctx context.Context, n *nodeRun, slot string) error {
	_, err := run(ctx, n, nodescript.SystemdStop, nodescript.SlotInput{App: n.app, Slot: slot})
	return err
}

// installProcs writes the run script of each process of the slot and has
// the helper render their units (removing the slot's other process units).
func installProcs(ctx context.Context, n *nodeRun, a Action) error {
	if len(n.spec.Processes) == 0 && len(n.obs.Procs[a.Slot]) == 0 {
		return nil
	}
	in := nodescript.ProcsInput{App: n.app, Slot: a.Slot, Release: a.Release, Limits: nf.LimitsOf(n.spec)}
	for _, p := range n.spec.Processes {
		if err := n.ex.WriteFile(ctx, sshexec.File{Path: nf.ProcRunScriptPath(n.app, a.Slot, p.Name), Mode: 0o644, Content: []byte(nf.ProcRunScript(p.Name, p.Command))}); err != nil {
			return fmt.Errorf("run script of process %s: %w", p.Name, err)
		}
		in.Procs = append(in.Procs, nodescript.Proc{Name: p.Name, StopTimeoutSec: procStopSeconds(p)})
	}
	if _, err := run(ctx, n, nodescript.SystemdInstallProcs, in); err != nil {
		return fmt.Errorf("process units: %w", err)
	}
	return nil
}

// procStopSeconds is a process's stopTimeout in whole seconds.
func procStopSeconds(p api.Process) int {
	if p.StopTimeout == nil {
		return int(api.DefaultProcessStopTimeout / time.Second)
	}
	return max(int(p.StopTimeout.Duration/time.Second), 1)
}

func (systemdRuntime) StartProcs(ctx context.Context, n *nodeRun, a Action) error {
	in := nodescript.ProcsInput{App: n.app, Slot: a.Slot}
	for _, p := range n.desired.Procs {
		in.Procs = append(in.Procs, nodescript.Proc{Name: p.Name, Replicas: p.Replicas})
	}
	if _, err := run(ctx, n, nodescript.SystemdScaleProcs, in); err != nil {
		return err
	}
	// Processes of the slot the spec does not name (left behind) stop.
	stale := nodescript.ProcsInput{App: n.app, Slot: a.Slot}
	for name := range n.obs.Procs[a.Slot] {
		if !slices.ContainsFunc(n.desired.Procs, func(p ProcGoal) bool { return p.Name == name }) {
			stale.Procs = append(stale.Procs, nodescript.Proc{Name: name})
		}
	}
	if len(stale.Procs) == 0 {
		return nil
	}
	_, err := run(ctx, n, nodescript.SystemdProcsStop, stale)
	return err
}

func (systemdRuntime) StopProcs(ctx context.Context, n *nodeRun, slot string) error {
	_, err := run(ctx, n, nodescript.SystemdProcsStop, nodescript.ProcsInput{App: n.app, Slot: slot})
	return err
}

func (systemdRuntime) Remove(ctx context.Context, n *nodeRun) error {
	_, err := run(ctx, n, nodescript.SystemdRemove, nodescript.RemoveInput{App: n.app, PurgeData: n.purgeData})
	return err
}

// nginxIngress writes the app's nginx site through bakery-sudo.
type nginxIngress struct{}

// site gives the parameters of the app's site (nodefiles.NginxSite
// renders it, and so does the node's helper); with goal, as it is once every TLS host
// has its certificate, else for the certificates known now.
func (g nginxIngress) site(n *nodeRun, slot string, port int, goal bool) nf.Site {
	s := nf.Site{App: n.app, Slot: slot, Port: port, CertHosts: g.certHosts(n, goal)}
	if ing := n.spec.Ingress; ing != nil {
		s.Hosts = ing.Hosts
		s.TLS = ing.TLS != nil
		s.HSTS = ing.TLS != nil && ing.TLS.HSTS
		s.Redirects = ing.Redirects
		if p := ing.Proxy; p != nil {
			s.NoWebSockets = p.WebSockets != nil && !*p.WebSockets
			s.NoBuffering = p.Buffering != nil && !*p.Buffering
			s.BodySize = p.ClientMaxBodySize
			if p.ReadTimeout != nil {
				s.ReadTimeout = int(p.ReadTimeout.Seconds())
			}
			if p.SendTimeout != nil {
				s.SendTimeout = int(p.SendTimeout.Seconds())
			}
			for _, name := range slices.Sorted(maps.Keys(p.Headers)) {
				s.Headers = append(s.Headers, nf.Header{Name: name, Value: p.Headers[name]})
			}
		}
		if m := ing.Maintenance; m != nil && m.Enabled {
			s.Maintenance = cmp.Or(m.Message, api.DefaultMaintenanceMessage)
		}
	}
	return s
}

// certHosts are the TLS hosts served over HTTPS: those with a certificate
// on the node, or with goal every one.
func (nginxIngress) certHosts(n *nodeRun, goal bool) []string {
	var out []string
	for _, h := range tlsHosts(n.spec) {
		if _, ok := n.obs.Certs[h]; ok || goal {
			out = append(out, h)
		}
	}
	return out
}

func (g nginxIngress) Hash(n *nodeRun, slot string, port int) string {
	return SHA256Hex(nf.NginxSite(g.site(n, slot, port, true)))
}

func (g nginxIngress) Switch(ctx context.Context, n *nodeRun, slot string, port int) error {
	n.logf("pointing nginx at the %s slot (port %d)", slot, port)
	hosts, token := []string{n.app}, ""
	if n.spec.Ingress != nil && len(n.spec.Ingress.Hosts) > 0 {
		hosts = n.spec.Ingress.Hosts[:1]
		if certHosts := g.certHosts(n, false); len(certHosts) > 0 {
			hosts, token = certHosts, nf.SiteToken(certHosts)
		}
	}
	_, err := run(ctx, n, nodescript.NginxSwitch, nodescript.NginxSwitchInput{App: n.app, Slot: slot, Hosts: hosts,
		Path: n.spec.HealthCheck.Path, Token: token, Site: g.site(n, slot, port, false)})
	return err
}

func (nginxIngress) Remove(ctx context.Context, n *nodeRun) error {
	_, err := run(ctx, n, nodescript.NginxRemove, nodescript.AppInput{App: n.app})
	return err
}
