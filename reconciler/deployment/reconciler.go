package deployment

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/internal/events"
	"bakery.dev/bakery/reconciler/nodeconn"
	nf "bakery.dev/bakery/reconciler/nodefiles"
	"bakery.dev/bakery/reconciler/nodescript"
	"bakery.dev/bakery/reconciler/source"
)

// Deployment condition reasons (besides the shared reconciler.ReasonInvalidSpec,
// ReasonSuspended and ReasonSourceUnavailable).
const (
	ReasonConverged     = "Converged"
	ReasonRollingOut    = "RollingOut"
	ReasonRolloutFailed = "RolloutFailed"
	// ReasonReleaseFailed: spec.release failed or timed out; nothing
	// switched.
	ReasonReleaseFailed    = "ReleaseFailed"
	ReasonNodesUnavailable = "NodesUnavailable"
	ReasonSuperseded       = "Superseded"
	ReasonDeadlineExceeded = "ProgressDeadlineExceeded"
	// ReasonWaitingForNode: an infrastructure failure (unreachable, the
	// connection dropped, a step of Bakery's own timed out) keeps a node
	// from the revision; the loop waits for it (ClassifyFailure).
	ReasonWaitingForNode = "WaitingForNode"
	// ReasonNodeDiskFull: as WaitingForNode, for a node whose disk is
	// full ("No space left on device").
	ReasonNodeDiskFull = "NodeDiskFull"
)

// Store is what the deployment reconciler needs of a store.
type Store interface {
	store.Store
	store.Rollouts
}

// Reconciler rolls Deployments out to their nodes: observe each
// node in one round trip, Plan, act, record status. A converged deployment
// costs one SSH round trip per node and writes nothing.
type Reconciler struct {
	// memPorts books ports when Ports is nil.
	memPorts memPortBook

	Store     Store
	Connector nodeconn.Connector
	Mirrors   *source.Mirrors
	// PortMin and PortMax bound the ports allocated to slots (default 20000-29999).
	PortMin, PortMax int
	// Resync is how often a converged deployment is observed again.
	Resync time.Duration
	// StepTimeout bounds one step on a node (default 15m; the progress
	// deadline bounds the whole rollout).
	StepTimeout time.Duration
	// KeepRollouts is how many rollouts (records and logs) are kept per
	// deployment: after a rollout finishes, older ones beyond it are
	// deleted. Zero means DefaultKeepRollouts; negative keeps every one.
	KeepRollouts int
	Logger       *slog.Logger
	// Ports books the ports that rollouts in flight have chosen but not
	// yet recorded in the node's state files, so that two deployments
	// rolling out on one node at once never pick the same port. Several
	// control planes sharing a store must share it (pgstore.Coordinator);
	// nil keeps the bookings in this process.
	Ports store.PortBook
	// ServerID names this control plane in the rollouts it runs.
	ServerID string
	// Keyring opens the Secrets deployments reference (nil: a deployment
	// that uses secrets does not roll out).
	Keyring *sealed.Keyring
	// Runtime and Ingress default to systemd units and nginx.
	Runtime Runtime
	Ingress Ingress
	// ACMEServer is the ACME directory certificates come from when a spec
	// names none (default DefaultACMEServer).
	ACMEServer string
	// RenewBefore is how long before expiry a certificate is renewed
	// (default DefaultRenewBefore); CertRetry how long a failed
	// certificate step waits before it is tried again (default
	// DefaultCertRetry).
	RenewBefore, CertRetry time.Duration

	// ShipHook, when set (tests), filters the archive of a shipped
	// release on its way to node (spec.build.on one): a test corrupts it
	// to see it refused.
	ShipHook func(node string, r io.Reader) io.Reader

	// events records RolloutSucceeded, RolloutFailed and UnitUnhealthy
	// (nil: none).
	Events *events.Recorder
}

func (r *Reconciler) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Reconciler) resync() time.Duration {
	if r.Resync > 0 {
		return r.Resync
	}
	return 30 * time.Second
}

func (r *Reconciler) stepTimeout() time.Duration {
	if r.StepTimeout > 0 {
		return r.StepTimeout
	}
	return 15 * time.Minute
}

func (r *Reconciler) portMin() int {
	if r.PortMin > 0 {
		return r.PortMin
	}
	return 20000
}

func (r *Reconciler) portMax() int {
	if r.PortMax > 0 {
		return r.PortMax
	}
	return 29999
}

// runtimeFor returns the Runtime of a spec: r.Runtime when set (tests),
// else docker containers or systemd units per spec.runtime.
func (r *Reconciler) runtimeFor(s *api.DeploymentSpec) Runtime {
	if r.Runtime != nil {
		return r.Runtime
	}
	if isDocker(s) {
		return dockerRuntime{}
	}
	return systemdRuntime{}
}

// previousRuntime returns the runtime the app's node state says it ran
// under, when that differs from the spec's (nil otherwise).
func previousRuntime(s *api.DeploymentSpec, obs nodescript.AppObservation) Runtime {
	if obs.State == nil || obs.State.Active == "" || obs.State.Dockerized == isDocker(s) {
		return nil
	}
	if obs.State.Dockerized {
		return dockerRuntime{}
	}
	return systemdRuntime{}
}

func (r *Reconciler) ingress() Ingress {
	if r.Ingress != nil {
		return r.Ingress
	}
	return nginxIngress{}
}

// specHash identifies what a running slot depends on besides the commit.
func specHash(s *api.DeploymentSpec) string {
	var env []string
	for _, e := range s.Run.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	sort.Strings(env)
	port := ""
	if s.Run.Port != nil {
		port = fmt.Sprint(*s.Run.Port)
	}
	hosts := ""
	if s.Ingress != nil {
		hosts = strings.Join(s.Ingress.Hosts, ",")
	}
	h := nf.Hash(s.Runtime, s.Run.Command, port, strings.Join(env, "\x00"), hosts, buildHash(s))
	if len(s.Processes) > 0 {
		// What a process's units depend on (not its replicas: a change of
		// those converges without a rollout).
		var procs []string
		for _, p := range s.Processes {
			exec := ""
			if p.HealthCheck != nil {
				exec = p.HealthCheck.Exec
			}
			procs = append(procs, nf.Hash(p.Name, p.Command, fmt.Sprint(procStopSeconds(p)), exec))
		}
		h = nf.Hash(h, strings.Join(procs, ","))
	}
	if isDocker(s) && s.Docker != nil {
		h = nf.Hash(h, s.Docker.Network)
	}
	if s.Release != nil {
		h = nf.Hash(h, "release", s.Release.Command) // a new release command is a new revision
	}
	if l := nf.LimitsOf(s).Args(); len(l) > 0 {
		h = nf.Hash(h, "limits", strings.Join(l, " ")) // new units: a new revision
	}
	return h
}

func buildHash(s *api.DeploymentSpec) string {
	if isDocker(s) {
		// The image is built from the Dockerfile with the build args:
		// a change of either makes a new release (and image).
		var args []string
		if s.Docker != nil {
			for k, v := range s.Docker.BuildArgs {
				args = append(args, k+"="+v)
			}
		}
		sort.Strings(args)
		file := ""
		if s.Docker != nil {
			file = s.Docker.Dockerfile
		}
		return nf.Hash("docker", file, strings.Join(args, "\x00"))
	}
	return nf.Hash(s.Build.Install, s.Build.Test, s.Build.Build)
}

// envValues lists the app's environment values, masked in stored logs.
func envValues(s *api.DeploymentSpec) []string {
	var out []string
	for _, e := range s.Run.Env {
		out = append(out, e.Value)
	}
	return out
}
