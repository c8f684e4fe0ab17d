package api

// Rollout states.
const (
	RolloutPending    = "pending"
	RolloutRunning    = "running"
	RolloutSucceeded  = "succeeded"
	RolloutFailed     = "failed"
	RolloutCancelled  = "cancelled"
	RolloutSuperseded = "superseded"
)

// Rollout triggers.
const (
	TriggerApply          = "apply"
	TriggerWebhook        = "webhook"
	TriggerManifestSource = "manifest-source"
	TriggerDeployNow      = "deploy-now"
	TriggerRedeploy       = "redeploy"
	TriggerRestart        = "restart"
	TriggerRollback       = "rollback"
	TriggerDriftRepair    = "drift-repair"
)

// Rollout is one attempt to bring a deployment to a revision (a commit and
// a spec generation). It is a record written by the control plane, not a
// spec users apply.
type Rollout struct {
	ID         string `json:"id"`
	Deployment string `json:"deployment"`
	// Revision numbers the deployment's revisions: 1, 2, … A repair of
	// drift keeps the revision.
	Revision   int64  `json:"revision"`
	Trigger    string `json:"trigger"`
	Commit     string `json:"commit"`
	Generation int64  `json:"generation"`
	// TriggeredBy says who or what asked for it (a token name, "webhook", "controller").
	TriggeredBy string `json:"triggeredBy,omitempty"`
	// Server is the control plane that ran it (its server id), when
	// several share one database.
	Server     string `json:"server,omitempty"`
	State      string `json:"state"`
	Message    string `json:"message,omitempty"`
	CreatedAt  *Time  `json:"createdAt,omitempty"`
	FinishedAt *Time  `json:"finishedAt,omitempty"`
	// Nodes holds the steps run on each node, in order.
	Nodes []RolloutNode `json:"nodes,omitempty"`
	// Request is the id of the request the rollout carries out: an
	// action's id (CommitPin.ID, DeployRequest.ID, DeploymentStatus.Restart),
	// so that a client that asked for it can wait for this very rollout.
	Request string `json:"request,omitempty"`
	// Spec is the deployment's spec as this rollout rolled it out (with
	// defaults applied); a rollback to the revision restores it.
	Spec *DeploymentSpec `json:"spec,omitempty"`
	// Release says whether this rollout ran spec.release, where and how it
	// ended, or why it did not run it (Result skipped).
	Release *ReleaseRun `json:"release,omitempty"`
}

// ReleaseRun is one run (or skip) of spec.release.
type ReleaseRun struct {
	// Commit is the commit the release command ran for.
	Commit string `json:"commit"`
	// CommandHash identifies the command (a changed command runs again).
	CommandHash string `json:"commandHash,omitempty"`
	// Rollout is the rollout that ran it (in status.release).
	Rollout string `json:"rollout,omitempty"`
	Node    string `json:"node,omitempty"`
	// Result is succeeded, failed or skipped.
	Result string `json:"result"`
	// Message says why it was skipped or how it failed.
	Message        string `json:"message,omitempty"`
	ExitCode       int    `json:"exitCode,omitempty"`
	DurationMillis int64  `json:"durationMs,omitempty"`
	At             *Time  `json:"at,omitempty"`
}

// Results of a release run (ReleaseRun.Result).
const (
	ReleaseSucceeded = "succeeded"
	ReleaseFailed    = "failed"
	ReleaseSkipped   = "skipped"
)

// Done reports whether the rollout reached a final state.
func (r *Rollout) Done() bool {
	switch r.State {
	case RolloutSucceeded, RolloutFailed, RolloutCancelled, RolloutSuperseded:
		return true
	}
	return false
}

// RolloutNode is the part of a rollout on one node.
type RolloutNode struct {
	Node  string        `json:"node"`
	State string        `json:"state"`
	Steps []RolloutStep `json:"steps,omitempty"`
}

// RolloutStep is one action run on a node.
type RolloutStep struct {
	Name  string `json:"name"`
	Start *Time  `json:"start,omitempty"`
	End   *Time  `json:"end,omitempty"`
	// DurationMillis is how long the step took, in milliseconds.
	DurationMillis int64  `json:"durationMs,omitempty"`
	Result         string `json:"result,omitempty"` // succeeded, failed, cancelled
	ExitCode       int    `json:"exitCode,omitempty"`
	Message        string `json:"message,omitempty"`
}

// Log streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamBakery = "bakery"
)

// LogLine is one line of a rollout's log. Seq orders the lines of a
// rollout across all its nodes, from 1.
type LogLine struct {
	Seq    int64  `json:"seq"`
	Node   string `json:"node,omitempty"`
	Stream string `json:"stream"`
	Time   *Time  `json:"time"`
	Text   string `json:"text"`
}
