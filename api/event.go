package api

// Event types: what the control plane tells operators about.
const (
	EventRolloutSucceeded = "RolloutSucceeded"
	EventRolloutFailed    = "RolloutFailed"
	EventUnitUnhealthy    = "UnitUnhealthy"
	EventNodeUnreachable  = "NodeUnreachable"
	EventNodeRecovered    = "NodeRecovered"
	EventDiskLow          = "DiskLow"
	// GitOps: a push webhook and manifest syncs.
	EventPushReceived    = "PushReceived"
	EventPushIgnored     = "PushIgnored"
	EventManifestsSynced = "ManifestsSynced"
	EventManifestsFailed = "ManifestsFailed"
	// EventCertificateRenewalFailed: a certificate due for renewal could
	// not be renewed (it keeps being served until it expires).
	EventCertificateRenewalFailed = "CertificateRenewalFailed"
	// EventMixedVersions: a deployment's nodes have run different commits
	// or revisions for longer than its progress deadline.
	EventMixedVersions = "MixedVersions"
	// EventExec: someone ran a one-off command (bakery exec) in a
	// deployment's release; the event names who, where and the command,
	// never the environment.
	EventExec = "Exec"
	// EventScheduleFailed: a run of a schedule failed (raised once per
	// failed run the control plane observes).
	EventScheduleFailed = "ScheduleFailed"
)

// Event severities.
const (
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityError   = "error"
)

// Event is something that happened to an object, kept for `bakery
// describe` and the API and sent to notification targets. It is a record
// written by the control plane, not a spec.
type Event struct {
	ID   string `json:"id"`
	Time *Time  `json:"time"`
	Type string `json:"type"`
	// Severity is info, warning or error.
	Severity string `json:"severity"`
	// Object is "Kind/name" (Deployment/hello, Node/web-1).
	Object  string `json:"object"`
	Message string `json:"message"`
	// Rollout names the rollout the event is about, if any.
	Rollout string `json:"rollout,omitempty"`
	// Count, when more than 1, is how many times the event occurred: an
	// event identical to its object's previous one (type, severity,
	// message, rollout) within a few minutes of it is not stored again
	// but counted, and stored with its count when it occurs again after
	// that.
	Count int `json:"count,omitempty"`
}
