package api

import (
	"encoding/json"
	"sort"
	"time"
)

// Deployment is an application Bakery keeps running on a set of nodes.
type Deployment struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta       `json:"metadata"`
	Spec     DeploymentSpec   `json:"spec"`
	Status   DeploymentStatus `json:"status,omitempty"`
}

// AnnotationDeletionRequested marks a Deployment whose deletion was asked
// for while a control loop runs: the loop removes the app from every node
// (units stopped and removed, nginx site removed, files pruned) and then
// deletes the object. Its value is the time of the request.
const AnnotationDeletionRequested = "bakery.dev/deletion-requested"

// AnnotationPurgeData, "true" beside AnnotationDeletionRequested, has the
// deletion remove the app's persistent directories (spec.persistent) too
// (`bakery delete --purge-data`, DELETE ...?purgeData=true); without it
// they stay on the nodes.
const AnnotationPurgeData = "bakery.dev/purge-data"

// Runtimes.
const (
	RuntimeSystemd = "systemd"
	RuntimeDocker  = "docker"
)

// Strategy types.
const (
	StrategyBlueGreen = "BlueGreen"
)

// DeploymentSpec is the desired state of a Deployment.
type DeploymentSpec struct {
	Source Source `json:"source"`
	// Nodes names the nodes to run on; NodeSelector selects them by label.
	// Both may be given: the union is used. At least one is required.
	Nodes        []string          `json:"nodes,omitempty"`
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	Build        Build             `json:"build,omitempty"`
	// Runtime is systemd (default) or docker.
	Runtime string      `json:"runtime,omitempty"`
	Docker  *DockerSpec `json:"docker,omitempty"`
	Run     Run         `json:"run"`
	// Release, if set, runs a command once per rollout of a new revision
	// (a database migration): after the build on every node and before any
	// node starts or switches to the new release, on one target node (the
	// first by name that built), as the app's user in the new release with
	// the app's environment and secrets (PORT unset; runtime docker: a
	// `docker run --rm` of the new image with the slot's environment). Its
	// output is the step "release" of the rollout log. If it fails or times
	// out, no node starts or switches: the rollout fails (Degraded, reason
	// ReleaseFailed) and the old version keeps serving. It runs again only
	// for a commit it has not run for with the same command (as the
	// deployment's rollout records say): a rollback, a restart, a repair of
	// drift or a spec change that keeps commit and command do not run it;
	// `bakery deploy --rerun-release` does. A changed command is a new
	// revision. The command must be safe to run while the old version
	// serves (an expand-then-contract migration).
	Release     *Release    `json:"release,omitempty"`
	HealthCheck HealthCheck `json:"healthCheck,omitempty"`
	// Processes are named non-HTTP processes (workers) that run from the
	// same release and environment as the web process (no PORT;
	// BAKERY_PROCESS and BAKERY_REPLICA set), replicas of each per node,
	// as systemd units bakery-APP-SLOT-NAME@N. They switch with the web
	// process: after the web switch the new release's processes start
	// and pass their healthCheck.exec (run in the release with the app's
	// environment, retried as spec.healthCheck says), then the old ones
	// get SIGTERM and stopTimeout to finish their job (a failing health
	// check fails the rollout there, Degraded, after the web switch: the
	// old processes are not stopped then). A stopped or
	// failed instance is started again at resync; a change of replicas
	// converges without a rollout; a process left out of the spec stops
	// with its old slot. Logs: bakery logs deployment/NAME --runtime
	// --process NAME. Under runtime docker each instance is a container
	// bakery-APP-SLOT-NAME-N of the release's image. A deployment without
	// run.command and without ingress is a worker-only app (runtime
	// systemd): no web process, port, nginx site or HTTP health check.
	Processes []Process `json:"processes,omitempty"`
	Ingress   *Ingress  `json:"ingress,omitempty"`
	// Schedules are jobs run on a calendar in the active release (see
	// Schedule).
	Schedules []Schedule `json:"schedules,omitempty"`
	Strategy  Strategy   `json:"strategy,omitempty"`
	// Persistent are directories that survive releases, rollbacks and
	// restarts (see Persistent).
	Persistent []Persistent `json:"persistent,omitempty"`
	// Resources limits memory, CPU and tasks of every unit or container of
	// the app (see Resources).
	Resources *Resources `json:"resources,omitempty"`
	// KeepReleases is how many built releases stay on each node (default 3).
	KeepReleases int `json:"keepReleases,omitempty"`
	// ProgressDeadline fails a rollout that has not finished in time (default 10m).
	ProgressDeadline *Duration `json:"progressDeadline,omitempty"`
	// Suspend stops the control loop from changing anything.
	Suspend bool `json:"suspend,omitempty"`
}

// Source says where the application's code comes from.
type Source struct {
	// Repo is a git URL or a path on the control plane's host.
	Repo string `json:"repo"`
	// Ref is a branch or tag (default main).
	Ref string `json:"ref,omitempty"`
	// Commit pins a full commit id; when set, Ref is not followed.
	Commit string `json:"commit,omitempty"`
}

// Release is the release command (spec.release): it runs once per
// rollout of a new revision, on one target node, in the new release with
// the app's environment, after the build and before any node starts or
// switches to the new release; if it fails or times out, nothing
// switches. It does not run again for a commit it already ran for with
// the same command (a rollback, a deploy of the same commit) unless a
// deploy asks for it (--rerun-release).
type Release struct {
	// Command is run by /bin/sh in the release directory.
	Command string `json:"command"`
	// Timeout bounds the command (default 10m, at most 24h).
	Timeout *Duration `json:"timeout,omitempty"`
}

// Build lists the shell commands run on the node in the release directory.
type Build struct {
	Install string `json:"install,omitempty"`
	Test    string `json:"test,omitempty"`
	Build   string `json:"build,omitempty"`
	// On says where a release is built: "one" (default) builds and tests
	// it on one target node (one labelled bakery.dev/builder=true, else
	// the first by name) and ships the result to the others, checked by
	// its SHA-256, so every node runs the same bytes and N nodes cost one
	// build; "each" builds it on every node (at once), which can be
	// quicker for a release that is cheap to build but large to ship.
	On string `json:"on,omitempty"`
}

// Where a release is built (spec.build.on).
const (
	BuildOnOne  = "one"
	BuildOnEach = "each"
)

// BuilderLabel marks the node that builds a release for the others
// (spec.build.on one) when it is one of a deployment's targets.
const BuilderLabel = "bakery.dev/builder"

// DockerSpec configures the docker runtime.
type DockerSpec struct {
	// Dockerfile is a path relative to the repository root (default Dockerfile).
	Dockerfile string            `json:"dockerfile,omitempty"`
	BuildArgs  map[string]string `json:"buildArgs,omitempty"`
	// Network is "bridge" (default: the slot port is published) or "host".
	Network string `json:"network,omitempty"`
}

// Run says how the application runs.
type Run struct {
	// Command starts the application (systemd runtime; optional for docker).
	// The application listens on $PORT.
	Command string `json:"command,omitempty"`
	// Port pins the blue slot's port (green uses Port+1). When unset, ports
	// are allocated per node.
	Port *int     `json:"port,omitempty"`
	Env  []EnvVar `json:"env,omitempty"`
	// EnvFrom adds every key of the named Secrets as environment
	// variables, in order (a later secret wins a key both hold); Env
	// entries win over them.
	EnvFrom []EnvFromSource `json:"envFrom,omitempty"`
}

// EnvVar is one environment variable of the application: a Value, or a
// ValueFrom naming a key of a Secret.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvFromSource names a Secret whose keys all become environment variables.
type EnvFromSource struct {
	// SecretRef is the Secret's name.
	SecretRef string `json:"secretRef"`
}

// EnvVarSource says where a variable's value comes from.
type EnvVarSource struct {
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef"`
}

// SecretKeySelector is one key of a Secret.
type SecretKeySelector struct {
	// Name is the Secret's name.
	Name string `json:"name"`
	// Key is the key within the Secret.
	Key string `json:"key"`
}

// SecretNames returns the names of the Secrets the spec references, sorted,
// each once.
func (s *DeploymentSpec) SecretNames() []string {
	seen := map[string]bool{}
	for _, e := range s.Run.EnvFrom {
		seen[e.SecretRef] = true
	}
	for _, e := range s.Run.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			seen[e.ValueFrom.SecretKeyRef.Name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Process is one named non-HTTP process of a deployment (a worker). Its
// units run from the slot's release with the slot's environment (no
// PORT; BAKERY_PROCESS and BAKERY_REPLICA are set). They switch with the
// web process: after the web switch the new release's processes start
// (and pass their health check), then the old ones get SIGTERM and
// stopTimeout to finish their job.
type Process struct {
	// Name is a DNS label of at most 20 characters (no "-"-separated
	// part "blue" or "green"), unique within the deployment.
	Name string `json:"name"`
	// Command runs the process (a shell command line, as run.command).
	Command string `json:"command"`
	// Replicas is how many instances run on each node (default 1).
	Replicas int `json:"replicas,omitempty"`
	// StopTimeout is how long a stopped process has after SIGTERM to
	// finish before it is killed (default 10s, whole seconds, at most 24h).
	StopTimeout *Duration `json:"stopTimeout,omitempty"`
	// HealthCheck, when given, must pass for a new process before the old
	// ones are stopped; without one a process is healthy while it runs.
	HealthCheck *ProcessHealthCheck `json:"healthCheck,omitempty"`
}

// ProcessHealthCheck checks a process by running a command in its release
// with its environment (as the app's user, or in a container of the
// release's image under docker): exit status 0 is healthy. It is retried
// as spec.healthCheck says (retries, interval); each attempt may take
// spec.healthCheck.timeout, at least 10s.
type ProcessHealthCheck struct {
	Exec string `json:"exec"`
}

// Default process settings.
const (
	DefaultProcessReplicas    = 1
	DefaultProcessStopTimeout = 10 * time.Second
)

// HasWeb reports whether the deployment has a web process (a slot unit or
// container serving HTTP behind nginx): every deployment but a
// worker-only one (no run.command, no ingress, processes given) under
// runtime systemd.
func (s *DeploymentSpec) HasWeb() bool {
	return !(s.Runtime != RuntimeDocker && s.Run.Command == "" && s.Ingress == nil && len(s.Processes) > 0)
}

// HealthCheck is an HTTP check against the new slot before traffic moves.
type HealthCheck struct {
	// Path is the HTTP path (default /).
	Path     string    `json:"path,omitempty"`
	Timeout  *Duration `json:"timeout,omitempty"`
	Interval *Duration `json:"interval,omitempty"`
	// Retries is how many failed checks in a row fail the rollout.
	Retries int `json:"retries,omitempty"`
	// StartPeriod is a grace period during which failures do not count.
	StartPeriod *Duration `json:"startPeriod,omitempty"`
}

// Ingress makes the application reachable through nginx.
type Ingress struct {
	Hosts []string `json:"hosts,omitempty"`
	TLS   *TLS     `json:"tls,omitempty"`
	// Proxy tunes how nginx passes requests to the app.
	Proxy *Proxy `json:"proxy,omitempty"`
	// Redirects send every request for a host (FROM, not one of hosts) to
	// another (TO) with a permanent redirect (301), keeping the path and
	// query: www ↔ apex. FROM is served over plain HTTP only (no
	// certificate is asked for it); with tls, TO is reached over HTTPS.
	Redirects []Redirect `json:"redirects,omitempty"`
	// Maintenance makes nginx answer every request for the app's hosts
	// with 503, a Retry-After header and a message, without touching the
	// running slots (bakery maintenance on|off sets it); turning it off
	// restores service at once (an nginx reload, no restart).
	Maintenance *Maintenance `json:"maintenance,omitempty"`
}

// Proxy holds nginx's per-app proxy settings.
//
// Open connections on a switch: nginx's reload leaves connections already
// open (WebSockets, server-sent events, long downloads) with the old
// workers, still proxied to the old slot; new connections go to the new
// slot. The old slot keeps running for strategy.drain after the switch and
// is then stopped, which ends what is still open (nodes' nginx.conf sets
// no worker_shutdown_timeout, so the old workers wait for their
// connections). Size strategy.drain to the longest request or stream a
// client should be allowed to finish after a deploy (a file download, a
// report); long-lived WebSockets and event streams should reconnect
// anyway, so a drain of a few seconds to a minute is usual: every
// rollout waits that long on each node before it stops the old slot.
type Proxy struct {
	// WebSockets passes Upgrade requests to the app with the Upgrade and
	// Connection headers (default true).
	WebSockets *bool `json:"websockets,omitempty"`
	// Buffering lets nginx buffer the app's responses (default true); with
	// false (proxy_buffering off) server-sent events and chunked responses
	// reach the client as the app writes them.
	Buffering *bool `json:"buffering,omitempty"`
	// ClientMaxBodySize is the largest request body accepted (nginx's
	// client_max_body_size: a number with an optional k, m or g; "0" means
	// no limit; default nginx's 1m). Larger requests get 413.
	ClientMaxBodySize string `json:"clientMaxBodySize,omitempty"`
	// ReadTimeout is how long nginx waits between two reads from the app
	// (proxy_read_timeout; default 60s; whole seconds, at most 24h): an
	// idle WebSocket or event stream is closed after it.
	ReadTimeout *Duration `json:"readTimeout,omitempty"`
	// SendTimeout is how long nginx waits between two writes to the app
	// (proxy_send_timeout; default 60s; whole seconds, at most 24h).
	SendTimeout *Duration `json:"sendTimeout,omitempty"`
	// Headers are added to every response (add_header NAME "VALUE"
	// always). A name is letters, digits and '-' (at most 64, not
	// X-Bakery-*); a value is printable ASCII without " \ ; { } $ (at most
	// 512 characters). At most 20.
	Headers map[string]string `json:"headers,omitempty"`
}

// Redirect is a permanent redirect of every request for a host.
type Redirect struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Maintenance is the app's maintenance mode.
type Maintenance struct {
	Enabled bool `json:"enabled,omitempty"`
	// Message is the plain-text body of the 503 answers (default "Down
	// for maintenance."): printable ASCII without " \ ; { } $, at most 512
	// characters.
	Message string `json:"message,omitempty"`
}

// TLS asks for a certificate per host from an ACME server, with certbot
// on each node (HTTP-01 challenge through the node's nginx), and serves
// the hosts over HTTPS with HTTP redirected to it.
type TLS struct {
	// Email is the ACME account's contact address.
	Email string `json:"email"`
	// Server is the ACME directory URL (default: the control plane's
	// --acme-server, which defaults to Let's Encrypt).
	Server string `json:"server,omitempty"`
	// HSTS adds "Strict-Transport-Security: max-age=31536000" to the
	// answers served over HTTPS (never to plain HTTP ones).
	HSTS bool `json:"hsts,omitempty"`
}

// Strategy says how a new revision replaces the old one.
type Strategy struct {
	// Type is BlueGreen: per node, the idle slot is started and checked
	// before traffic moves.
	Type string `json:"type,omitempty"`
	// MaxUnavailable is how many nodes switch at once (default 1).
	MaxUnavailable int `json:"maxUnavailable,omitempty"`
	// MaxParallel is how many nodes prepare the new revision at once
	// (fetch, build and test, install, start of the idle slot, health
	// check), before any node switches (default 0: all target nodes).
	MaxParallel int `json:"maxParallel,omitempty"`
	// Drain is how long the old slot keeps running after the switch:
	// connections already open to it (WebSockets, event streams, long
	// downloads) keep working that long, then end when it stops; new
	// connections go to the new slot at once. Size it to the longest
	// request a client must be able to finish (docs/operations.md,
	// "Open connections and the drain").
	Drain *Duration `json:"drain,omitempty"`
}

// DeploymentStatus is the observed state of a Deployment.
type DeploymentStatus struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
	// Commit is the commit the spec resolved to.
	Commit string `json:"commit,omitempty"`
	// Revision is the number of the current revision.
	Revision int64 `json:"revision,omitempty"`
	// SpecHash identifies the runtime-relevant spec of the current revision.
	SpecHash string `json:"specHash,omitempty"`
	// FailedAttempt records the last failed rollout's commit and spec, so
	// that the loop does not retry the same broken revision on its own:
	// a new commit, a spec change or a manual action starts a new attempt.
	// While a failed new commit (same spec hash as SpecHash) stands, drift
	// of the current revision is still repaired (drift-repair rollouts of
	// Revision); the failure stays recorded.
	FailedAttempt *FailedAttempt `json:"failedAttempt,omitempty"`
	// Pin replaces the spec's ref with a commit chosen by an action
	// (redeploy, rollback) for as long as the spec stays at Pin.Generation.
	// A rollback's pin keeps the loop from deploying the rolled-back-from
	// commit again on its own until the spec changes or the pin is
	// cleared (action resume or deploy). While it holds, condition Pinned
	// is True and a new commit on the followed ref is recorded as event
	// PushIgnored, once per commit.
	Pin *CommitPin `json:"pin,omitempty"`
	// Restart is the latest restart asked for; RestartDone the last one
	// carried out. They differ while a restart is pending.
	Restart     string `json:"restart,omitempty"`
	RestartDone string `json:"restartDone,omitempty"`
	// RestartBy is who asked for Restart (see CommitPin.By).
	RestartBy string `json:"restartBy,omitempty"`
	// DeployRequest is a "deploy now" asked for and not yet carried out:
	// the rollout it starts has trigger deploy-now and its requester as
	// TriggeredBy. The loop clears it when it starts that rollout, or
	// finds nothing to roll out.
	DeployRequest *DeployRequest `json:"deployRequest,omitempty"`
	// AppliedBy is who applied the spec of Generation through the API; the
	// first rollout of that generation names them as TriggeredBy.
	AppliedBy *AppliedBy `json:"appliedBy,omitempty"`
	// LastPush is the last push of the followed ref delivered through a
	// signed webhook (recorded by whichever control plane received it):
	// the rollout of its commit records trigger webhook.
	LastPush *PushRecord `json:"lastPush,omitempty"`
	// LastRequest says how the loop carried out the last action request
	// (deploy, redeploy, restart, rollback, resume; its id is the one the
	// action answered with): the rollout that carried it out and how that
	// ended, or that no rollout was needed. A client waits for it (--wait).
	LastRequest    *RequestOutcome `json:"lastRequest,omitempty"`
	CurrentRollout *RolloutRef     `json:"currentRollout,omitempty"`
	// Release is the last run of spec.release (its rollout, node, result
	// and duration).
	Release *ReleaseRun `json:"release,omitempty"`
	// Nodes says what each target node runs (which commit and revision),
	// or why it could not be observed ("unreachable: …").
	Nodes []NodeAppStatus `json:"nodes,omitempty"`
	// Waiting is set while the deployment waits for nodes that an
	// infrastructure failure keeps from the revision (unreachable, the
	// connection dropped, disk full): not a verdict on the revision, so
	// no FailedAttempt is recorded and the loop retries with a capped
	// backoff. The rollout (Waiting.Rollout) stays running and continues
	// on each node once it can be reached. Degraded is raised only when
	// the wait lasts longer than spec.progressDeadline from Since.
	Waiting *NodeWait `json:"waiting,omitempty"`
	// Mixed is set while the target nodes run different commits or
	// revisions; a MixedVersions warning event is recorded once it lasts
	// longer than spec.progressDeadline.
	Mixed *MixedVersions `json:"mixed,omitempty"`
	// Schedules says, per schedule, its last run (when, where, result,
	// duration) and its next run, as the nodes' timers reported them at
	// the last observation (every resync): a run that started and ended
	// between two observations is seen only if it is still the last one.
	Schedules []ScheduleStatus `json:"schedules,omitempty"`
}

// NodeWait is what a deployment waits for (DeploymentStatus.Waiting).
type NodeWait struct {
	// Since is when the wait began; it survives restarts of the control
	// plane, so the progress deadline counts from it.
	Since Time `json:"since"`
	// Rollout is the id of the rollout that waits ("" when no rollout
	// runs: the nodes could not be observed).
	Rollout string `json:"rollout,omitempty"`
	// Nodes are the nodes waited for.
	Nodes []string `json:"nodes"`
	// Message names each node and its error.
	Message string `json:"message,omitempty"`
}

// MixedVersions says since when a deployment's nodes run different
// commits or revisions (DeploymentStatus.Mixed).
type MixedVersions struct {
	Since Time `json:"since"`
	// Warned: the MixedVersions event was recorded for this period.
	Warned bool `json:"warned,omitempty"`
}

// CommitPin is a commit an action asked for.
type CommitPin struct {
	// ID tells actions apart: the rollout that carries the pin out
	// records it as Rollout.Request.
	ID         string `json:"id,omitempty"`
	Commit     string `json:"commit"`
	Reason     string `json:"reason"` // redeploy or rollback
	Generation int64  `json:"generation"`
	// Revision is the revision rolled back to (rollback only).
	Revision int64 `json:"revision,omitempty"`
	// SpecRestored (rollback only) says that the revision's recorded spec
	// (Rollout.Spec) was written as spec generation Generation; false: the
	// revision has no recorded spec (rolled out by an older Bakery), only
	// its commit is pinned and the current spec stays.
	SpecRestored bool `json:"specRestored,omitempty"`
	// RefHead is the commit the followed ref named when the loop last
	// looked while the pin held; a later commit is reported once, as
	// event PushIgnored.
	RefHead string `json:"refHead,omitempty"`
	// By is who asked: an API token's name, or "user:<name>" for a web UI
	// user. The rollout the pin starts records it as TriggeredBy.
	By string `json:"by,omitempty"`
}

// DeployRequest is a pending "deploy now" action.
type DeployRequest struct {
	// ID tells requests apart (the loop clears only the one it saw).
	ID string `json:"id"`
	// RerunRelease runs spec.release again even if it ran for the commit
	// before (bakery deploy --rerun-release).
	RerunRelease bool `json:"rerunRelease,omitempty"`
	// By is who asked (see CommitPin.By).
	By string `json:"by,omitempty"`
	// Generation is the spec generation it was asked for at; a later
	// spec change is an apply of its own.
	Generation int64 `json:"generation"`
}

// AppliedBy records who applied a spec generation.
type AppliedBy struct {
	By         string `json:"by"`
	Generation int64  `json:"generation"`
}

// PushRecord is a push reported by a signed webhook.
type PushRecord struct {
	// Commit is the commit the pushed ref points to.
	Commit string `json:"commit"`
	// Ref is the full ref pushed (refs/heads/main).
	Ref string `json:"ref,omitempty"`
	// Delivery is the webhook's delivery id.
	Delivery string `json:"delivery,omitempty"`
	// Received is when the webhook arrived.
	Received *Time `json:"received,omitempty"`
}

// Request outcome states besides a rollout's final states.
const (
	// RequestConverged: the nodes already ran what the request asked
	// for; no rollout was needed.
	RequestConverged = "converged"
)

// RequestOutcome is how the control loop carried out one action request.
type RequestOutcome struct {
	// ID is the request's id (ActionResponse.Request).
	ID string `json:"id"`
	// Rollout is the rollout that carried it out ("" when none was
	// needed).
	Rollout string `json:"rollout,omitempty"`
	// State is the rollout's final state (succeeded, failed, cancelled)
	// or converged (no rollout was needed).
	State string `json:"state"`
	// Message says why a rollout failed, or what the nodes run.
	Message string `json:"message,omitempty"`
	// Revision and Commit are what the nodes were brought to (or found
	// at).
	Revision int64  `json:"revision,omitempty"`
	Commit   string `json:"commit,omitempty"`
}

// FailedAttempt names a revision whose rollout failed.
type FailedAttempt struct {
	Commit   string `json:"commit"`
	SpecHash string `json:"specHash"`
	Reason   string `json:"reason,omitempty"`
}

// RolloutRef points at a rollout and its state.
type RolloutRef struct {
	ID    string `json:"id"`
	State string `json:"state"`
	// LastLogSeq is the sequence number of the rollout's last log line.
	LastLogSeq int64 `json:"lastLogSeq,omitempty"`
}

// NodeAppStatus is the deployment's state on one node.
type NodeAppStatus struct {
	Node       string `json:"node"`
	ActiveSlot string `json:"activeSlot,omitempty"`
	Commit     string `json:"commit,omitempty"`
	// Revision is the deployment revision the active slot runs.
	Revision  int64  `json:"revision,omitempty"`
	Port      int    `json:"port,omitempty"`
	Healthy   bool   `json:"healthy,omitempty"`
	UnitState string `json:"unitState,omitempty"`
	// Message says why the node could not be observed ("unreachable: …")
	// or what its last step failed with.
	Message string `json:"message,omitempty"`
	// Certificates are the node's certificates for the TLS hosts.
	Certificates []CertificateStatus `json:"certificates,omitempty"`
	// Processes are the active slot's processes (spec.processes) on the node.
	Processes []ProcessStatus `json:"processes,omitempty"`
	// OOMKilled says the active slot's unit (container) was last stopped
	// by the kernel's OOM killer: it used more than spec.resources.memory.
	OOMKilled bool `json:"oomKilled,omitempty"`
	// Persistent are the sizes of the persistent directories
	// (spec.persistent) on the node.
	Persistent []PersistentStatus `json:"persistent,omitempty"`
}

// PersistentStatus is one persistent directory on one node.
type PersistentStatus struct {
	Path string `json:"path"`
	// Bytes is its size (du -s; -1: it could not be measured).
	Bytes int64 `json:"bytes"`
	// Size is the spec's advisory size; OverSize says Bytes exceeds it.
	Size     string `json:"size,omitempty"`
	OverSize bool   `json:"overSize,omitempty"`
}

// ProcessStatus is one process of the active slot on one node.
type ProcessStatus struct {
	Name string `json:"name"`
	// Replicas is how many instances should run; Running how many do.
	Replicas int `json:"replicas"`
	Running  int `json:"running"`
	// Revision is the deployment revision the instances run.
	Revision int64 `json:"revision,omitempty"`
}

// CertificateStatus is one host's certificate on one node.
type CertificateStatus struct {
	Host string `json:"host"`
	// NotAfter is when the certificate expires (nil: none issued yet).
	NotAfter *Time `json:"notAfter,omitempty"`
	// Serial is the certificate's serial number in hex.
	Serial string `json:"serial,omitempty"`
}

// GetTypeMeta implements Object.
func (d *Deployment) GetTypeMeta() *TypeMeta { return &d.TypeMeta }

// GetObjectMeta implements Object.
func (d *Deployment) GetObjectMeta() *ObjectMeta { return &d.Metadata }

// DeepCopyObject implements Object.
func (d *Deployment) DeepCopyObject() Object { return deepCopy(d) }

// SpecJSON implements Object.
func (d *Deployment) SpecJSON() json.RawMessage { return mustJSON(d.Spec) }

// StatusJSON implements Object.
func (d *Deployment) StatusJSON() json.RawMessage { return mustJSON(d.Status) }

// SetSpecJSON implements Object.
func (d *Deployment) SetSpecJSON(b json.RawMessage) error {
	var s DeploymentSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d.Spec = s
	return nil
}

// SetStatusJSON implements Object.
func (d *Deployment) SetStatusJSON(b json.RawMessage) error {
	var s DeploymentStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d.Status = s
	return nil
}

// Defaults for Deployments.
const (
	DefaultRef            = "main"
	DefaultKeepReleases   = 3
	DefaultHealthPath     = "/"
	DefaultHealthRetries  = 10
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthInterval = time.Second
	DefaultHealthStart    = 0
	DefaultDrain          = 2 * time.Second
	// DefaultMaintenanceMessage is the body of maintenance answers.
	DefaultMaintenanceMessage = "Down for maintenance."
	DefaultProgressDeadline   = 10 * time.Minute
	DefaultMaxUnavailable     = 1
	DefaultReleaseTimeout     = 10 * time.Minute
	// MaxReleaseTimeout bounds spec.release.timeout (the node helper's
	// check_seconds).
	MaxReleaseTimeout = 24 * time.Hour
)

// Default implements Object.
func (d *Deployment) Default() {
	s := &d.Spec
	if s.Source.Ref == "" && s.Source.Commit == "" {
		s.Source.Ref = DefaultRef
	}
	if s.Runtime == "" {
		s.Runtime = RuntimeSystemd
	}
	if s.Build.On == "" {
		s.Build.On = BuildOnOne
	}
	if s.Runtime == RuntimeDocker {
		if s.Docker == nil {
			s.Docker = &DockerSpec{}
		}
		if s.Docker.Dockerfile == "" {
			s.Docker.Dockerfile = "Dockerfile"
		}
		if s.Docker.Network == "" {
			s.Docker.Network = "bridge"
		}
	}
	if s.Release != nil && s.Release.Timeout == nil {
		s.Release.Timeout = &Duration{DefaultReleaseTimeout}
	}
	h := &s.HealthCheck
	if h.Path == "" {
		h.Path = DefaultHealthPath
	}
	if h.Timeout == nil {
		h.Timeout = &Duration{DefaultHealthTimeout}
	}
	if h.Interval == nil {
		h.Interval = &Duration{DefaultHealthInterval}
	}
	if h.Retries == 0 {
		h.Retries = DefaultHealthRetries
	}
	if h.StartPeriod == nil {
		h.StartPeriod = &Duration{DefaultHealthStart}
	}
	if s.Strategy.Type == "" {
		s.Strategy.Type = StrategyBlueGreen
	}
	if s.Strategy.MaxUnavailable == 0 {
		s.Strategy.MaxUnavailable = DefaultMaxUnavailable
	}
	if s.Strategy.Drain == nil {
		s.Strategy.Drain = &Duration{DefaultDrain}
	}
	if s.KeepReleases == 0 {
		s.KeepReleases = DefaultKeepReleases
	}
	for i := range s.Processes {
		p := &s.Processes[i]
		if p.Replicas == 0 {
			p.Replicas = DefaultProcessReplicas
		}
		if p.StopTimeout == nil {
			p.StopTimeout = &Duration{DefaultProcessStopTimeout}
		}
	}
	if s.ProgressDeadline == nil {
		s.ProgressDeadline = &Duration{DefaultProgressDeadline}
	}
	defaultSchedules(s)
}

// ReadyNodes counts the nodes serving the deployment's revision
// (status.revision; its commit for a node that does not say its revision)
// and healthy, over the nodes it runs on (status.nodes, or spec.nodes
// before the first rollout). A node that runs an older revision, or could
// not be observed, is not ready. It is `bakery get deployments`' READY.
func (d *Deployment) ReadyNodes() (ready, total int) {
	for _, n := range d.Status.Nodes {
		current := n.Commit != "" && n.Commit == d.Status.Commit
		if n.Revision != 0 && d.Status.Revision != 0 {
			current = n.Revision == d.Status.Revision
		}
		if n.Healthy && current {
			ready++
		}
	}
	total = len(d.Status.Nodes)
	if total == 0 {
		total = len(d.Spec.Nodes)
	}
	return ready, total
}
