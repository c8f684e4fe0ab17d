package reconciler

import (
	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/sealed"
)

// The types the API server and the loop exchange live in package api (the
// server may not import the loop); these aliases keep their old names here.

type (
	ActionRequest     = api.ActionRequest
	Push              = api.Push
	PushOutcome       = api.PushOutcome
	RuntimeLogRequest = api.RuntimeLogRequest
	RuntimeLogLine    = api.RuntimeLogLine
)

// Deployment actions the API can ask for (see api.Action).
const (
	ActionDeploy   = api.ActionDeploy
	ActionRedeploy = api.ActionRedeploy
	ActionRestart  = api.ActionRestart
	ActionRollback = api.ActionRollback
)

// ErrPushQueueFull means pushes arrive faster than they are handled; the
// webhook sender should retry later.
var ErrPushQueueFull = api.ErrPushQueueFull

// EncryptionKeyHint names where a server's encryption key comes from, for
// error messages.
const EncryptionKeyHint = sealed.EncryptionKeyHint
