package api

import (
	"encoding/json"
	"time"
)

// The wire types: bodies of the HTTP API's requests and answers that are
// not resources, shared by the server (api/server), the Go client
// (api/client) and what builds on them (the CLI, the web UI). docs/api.md
// describes the routes.

// ErrorBody is the body of every error answer of the API:
// {"code": 400, "message": "…", "details": [{"field", "reason"}]}.
type ErrorBody struct {
	// Code is the HTTP status.
	Code    int           `json:"code"`
	Message string        `json:"message"`
	Details []ErrorDetail `json:"details,omitempty"`
}

// ErrorDetail is one problem with one field of a request, named by its
// path ("document 2 (Deployment/web): spec.run.port").
type ErrorDetail struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ApplyAction says what an apply did (or, on a dry run, would do) to one
// object.
type ApplyAction string

// Apply actions, as kubectl prints them.
const (
	ApplyCreated    ApplyAction = "created"
	ApplyConfigured ApplyAction = "configured"
	ApplyUnchanged  ApplyAction = "unchanged"
)

// ApplyResponse is the answer of POST /api/v1/apply.
type ApplyResponse struct {
	DryRun  bool          `json:"dryRun"`
	Results []ApplyResult `json:"results"`
}

// ApplyResult says what apply did (or, on a dry run, would do) to one
// object of the bundle.
type ApplyResult struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Action is created, configured or unchanged.
	Action     ApplyAction `json:"action"`
	Generation int64       `json:"generation"`
	// Diff is a unified diff of the YAML of metadata.labels,
	// metadata.annotations and spec, live vs applied; empty when unchanged.
	Diff string `json:"diff"`
}

// Changed reports whether any result is not unchanged.
func (r *ApplyResponse) Changed() bool {
	for _, x := range r.Results {
		if x.Action != ApplyUnchanged {
			return true
		}
	}
	return false
}

// ObjectStatus is the answer of GET /api/v1/{resource}/{name}/status: an
// object's metadata and status (decode Status by kind, e.g. with Assemble).
type ObjectStatus struct {
	Metadata ObjectMeta      `json:"metadata"`
	Status   json.RawMessage `json:"status"`
}

// VersionInfo is the answer of GET /api/v1/version: the server's build
// and store.
type VersionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// Store is file or postgres.
	Store string `json:"store"`
}

// Bootstrap is the answer of GET /api/v1/nodes/{name}/bootstrap.
type Bootstrap struct {
	Node         string `json:"node"`
	PublicKey    string `json:"publicKey"`
	InstallerURL string `json:"installerURL"`
	// Command is the one line to run on the new node.
	Command string `json:"command"`
}

// Action is an action on a deployment the API can ask for
// (POST /api/v1/deployments/{name}/actions/{action}).
type Action string

// Deployment actions.
const (
	ActionDeploy   Action = "deploy"   // re-resolve the ref now and roll out what it names
	ActionRedeploy Action = "redeploy" // roll out a given commit
	ActionRestart  Action = "restart"  // start the same revision in the other slot and switch, no downtime
	ActionRollback Action = "rollback" // go back to a previous revision: its recorded spec and its commit
	ActionResume   Action = "resume"   // clear a rollback's (or redeploy's) pin: follow the ref again
	// ActionMaintenance sets spec.ingress.maintenance (ActionOptions.Maintenance)
	// as a new spec generation that keeps a rollback's or redeploy's pin.
	ActionMaintenance Action = "maintenance"
)

// ActionOptions is the (optional) body of
// POST /api/v1/deployments/{name}/actions/{action}.
type ActionOptions struct {
	// Commit is the commit to redeploy.
	Commit string `json:"commit"`
	// ToRevision is the revision to roll back to (0: the previous one).
	ToRevision int64 `json:"toRevision"`
	// RerunRelease (deploy) runs spec.release even for a commit it ran
	// for before.
	RerunRelease bool `json:"rerunRelease,omitempty"`
	// Maintenance (action maintenance) is the maintenance mode to set.
	Maintenance *Maintenance `json:"maintenance,omitempty"`
}

// ActionRequest is an action on one deployment, as the API hands it to
// the control loop.
type ActionRequest struct {
	Action Action `json:"action"`
	// Commit is the commit to redeploy.
	Commit string `json:"commit,omitempty"`
	// ToRevision is the revision to roll back to (0: the previous one).
	ToRevision int64 `json:"toRevision,omitempty"`
	// RerunRelease (deploy) runs spec.release even for a commit it ran
	// for before.
	RerunRelease bool `json:"rerunRelease,omitempty"`
	// Maintenance (action maintenance) is the maintenance mode to set.
	Maintenance *Maintenance `json:"maintenance,omitempty"`
	// By is who asks: an API token's name, or "user:<name>" for a web UI
	// user. The rollout the action starts records it as TriggeredBy.
	By string `json:"by,omitempty"`
	// ID is the request's id (the API server makes one up; "": the loop
	// does). The rollout that carries the action out records it as
	// Rollout.Request, and the deployment's status.lastRequest names it
	// when the action is done.
	ID string `json:"id,omitempty"`
}

// ActionResponse is the answer of POST /api/v1/deployments/{name}/actions/{action}.
type ActionResponse struct {
	Action Action `json:"action"`
	// Request is the action's id: wait for the rollout whose Request it
	// is, or for the deployment's status.lastRequest to name it.
	Request    string      `json:"request,omitempty"`
	Deployment *Deployment `json:"deployment"`
}

// RolloutList is the answer of GET /api/v1/deployments/{name}/rollouts.
type RolloutList struct {
	Items []*Rollout `json:"items"`
}

// LogPage is the answer of GET /api/v1/rollouts/{id}/logs.
type LogPage struct {
	Items []LogLine `json:"items"`
	// Next is the seq to pass as after= for the following page.
	Next int64 `json:"next"`
}

// StreamEnd is the data of the final "end" event of a rollout's log
// stream: how the rollout ended.
type StreamEnd struct {
	State   string `json:"state"`
	Message string `json:"message"`
}

// EventList is the answer of GET /api/v1/events.
type EventList struct {
	Items []*Event `json:"items"`
}

// RuntimeLogRequest asks for the running app's own log (the journal of
// its active slot's unit, or `docker logs` of its container for runtime
// docker) on its nodes.
type RuntimeLogRequest struct {
	// Node limits the log to one node ("" = every node of the deployment).
	Node string
	// Lines is how many past lines to show first (default 100).
	Lines int
	// Follow keeps streaming new lines until ctx ends; the remote
	// journalctl is killed then.
	Follow bool
	// Process selects the log of one process (spec.processes[].name) of
	// the active slot instead of its web process (runtime systemd).
	Process string
	// Schedule, when set, reads the journal of that schedule's service
	// (its runs' output) instead of the active slot's, on the nodes that
	// run it.
	Schedule string
}

// RuntimeLogLine is one line of an app's runtime log (the data of a
// "line" event of GET /api/v1/deployments/{name}/logs).
type RuntimeLogLine struct {
	Node   string `json:"node"`
	Slot   string `json:"slot"`
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// RuntimeLogEnd is the data of the final "end" event of
// GET /api/v1/deployments/{name}/logs: Error says why a node's log failed.
type RuntimeLogEnd struct {
	Error string `json:"error,omitempty"`
}

// ExecRequest is the body of POST /api/v1/deployments/{name}/exec: a
// one-off command run in the active release of the deployment, with its
// environment, on one node.
type ExecRequest struct {
	// Command is the command's argv (run through /bin/sh, each element
	// quoted); a single element is taken as a shell command line.
	Command []string `json:"command"`
	// Node picks the node ("": the first node, by name, that serves).
	Node string `json:"node,omitempty"`
	// TimeoutSeconds bounds the command (default 3600, at most 86400).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// TTY asks for a terminal (bakery exec -it): the exchange is then
	// the terminal protocol of the exec endpoint, not events.
	TTY bool `json:"tty,omitempty"`
	// Rows and Cols are the terminal's size.
	Rows int `json:"rows,omitempty"`
	Cols int `json:"cols,omitempty"`
	// By is who runs it (set by the API server from the caller).
	By string `json:"-"`
}

// ExecLine is one line of output of an exec ("line" event).
type ExecLine struct {
	Node   string `json:"node"`
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// ExecEnd is the data of the final "end" event of an exec: the command's
// exit status, or Error when it could not be run to its end.
type ExecEnd struct {
	Node     string `json:"node,omitempty"`
	ExitCode int    `json:"exitCode"`
	Error    string `json:"error,omitempty"`
}

// Exec limits.
const (
	DefaultExecTimeout = 3600
	MaxExecTimeout     = 86400
	MaxExecCommand     = 64 << 10
)

// ReencryptResult is the answer of POST /api/v1/reencrypt.
type ReencryptResult struct {
	// KeyID is the id of the current key, which every value is now
	// sealed with.
	KeyID string `json:"keyID"`
	// Secrets and Values count what was read; Resealed how many values
	// were sealed again (those sealed with an older key).
	Secrets  int `json:"secrets"`
	Values   int `json:"values"`
	Resealed int `json:"resealed"`
	// Identity says whether the control plane's stored SSH identity was
	// sealed again.
	Identity bool `json:"identity"`
	// Kinds counts, for every kind of sealed value the server holds
	// (Secret values, SSH identity, webhook secrets, GitHub tokens), the
	// values read and sealed again.
	Kinds []ResealCount `json:"kinds,omitempty"`
}

// ResealCount is what a re-encryption did to one kind of sealed value.
type ResealCount struct {
	What     string `json:"what"`
	Values   int    `json:"values"`
	Resealed int    `json:"resealed"`
}

// SyncResponse is the answer of POST /api/v1/manifestsources/{name}/sync:
// the source's status.syncHandled becomes Request once the sync is done.
type SyncResponse struct {
	Name    string `json:"name"`
	Request string `json:"request"`
}

// WebhookResponse is the answer of a webhook delivery.
type WebhookResponse struct {
	Delivery string `json:"delivery"`
	// Result is queued, duplicate (a replayed delivery id: nothing done),
	// pong (a GitHub ping) or ignored (an event other than push).
	Result string `json:"result"`
}

// WebhookSecretRequest is the body of POST /api/v1/webhooks/secrets.
type WebhookSecretRequest struct {
	Repo   string `json:"repo"`
	Rotate bool   `json:"rotate,omitempty"`
	// Sealed, when set, restores a secret from 'bakery export --secrets'
	// (WebhookSecretResponse.Sealed) instead of minting one: it must open
	// with the server's key and belong to Repo.
	Sealed string `json:"sealed,omitempty"`
}

// WebhookSecretList is the answer of GET /api/v1/webhooks/secrets without
// a repo: every repository's webhook secret, sealed only with
// ?sealed=true.
type WebhookSecretList struct {
	Items []WebhookSecretResponse `json:"items"`
}

// WebhookSecretResponse is the answer of the webhook secret routes: a
// repository's webhook secret. Secret is set only in the answer that
// created it.
type WebhookSecretResponse struct {
	Repo      string    `json:"repo"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// URLs are the webhook endpoints (path only when the server does not
	// know its public URL).
	GitHubURL  string `json:"githubURL"`
	GenericURL string `json:"genericURL"`
	// Sealed is the secret as stored, sealed with the server's key
	// (base64), in the list asked for with ?sealed=true (export).
	Sealed string `json:"sealed,omitempty"`
}

// GitHubLogin is the answer of GET /api/v1/github/login: open
// AuthorizeURL in a browser to sign in.
type GitHubLogin struct {
	AuthorizeURL string `json:"authorizeURL"`
}

// GitHubSignedIn is the answer of the OAuth callback and of
// GET /api/v1/github/user: the signed-in GitHub user.
type GitHubSignedIn struct {
	Login string `json:"login"`
}

// GitHubRepo is one repository the signed-in GitHub user can reach.
type GitHubRepo struct {
	FullName      string `json:"fullName"`
	Private       bool   `json:"private"`
	CloneURL      string `json:"cloneURL"`
	SSHURL        string `json:"sshURL"`
	HTMLURL       string `json:"htmlURL"`
	DefaultBranch string `json:"defaultBranch"`
}

// GitHubRepoList is the answer of GET /api/v1/github/repos.
type GitHubRepoList struct {
	Items []GitHubRepo `json:"items"`
}

// GitHubBranch is one branch and its head commit.
type GitHubBranch struct {
	Name   string `json:"name"`
	Commit string `json:"commit"`
}

// GitHubBranchList is the answer of GET /api/v1/github/repos/{owner}/{repo}/branches.
type GitHubBranchList struct {
	Items []GitHubBranch `json:"items"`
}

// GitHubHook is the answer of POST /api/v1/github/repos/{owner}/{repo}/hooks:
// the push webhook registered on GitHub.
type GitHubHook struct {
	ID   int64  `json:"id"`
	Repo string `json:"repo"`
	URL  string `json:"url"`
}

// UIPrefix is the path under which the server mounts the web UI.
const UIPrefix = "/ui"
