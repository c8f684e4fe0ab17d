package server

import (
	"context"
	"io"

	"bakery.dev/bakery/api"
)

// Loop is what the API asks of the control loop. The server never reaches
// into the loop's internals: cmd/bakery passes the reconciler's Manager,
// which implements this. A server without a loop (Config.Loop nil)
// answers 503 on the routes that need one.
//
// An error a method returns is answered like any other (see toError): an
// error of the loop that wants a particular status implements CodedError.
type Loop interface {
	// PublicKey is the control plane's SSH public key (authorized_keys line).
	PublicKey() string
	// VerifyNode connects to a node now and returns it with fresh status.
	VerifyNode(ctx context.Context, name string) (*api.Node, error)
	// DeploymentAction records an action on a deployment and wakes the
	// loop; the rollout it starts runs in the background.
	DeploymentAction(ctx context.Context, name string, req api.ActionRequest) (*api.Deployment, error)
	// QueuePush hands a webhook's push to the loop without waiting for
	// it (api.ErrPushQueueFull: try again later).
	QueuePush(p api.Push) error
	// SyncSource asks for a sync of a ManifestSource now and returns the
	// request id its status.syncHandled takes once done.
	SyncSource(ctx context.Context, name string) (request string, err error)
	// RuntimeLogs streams the app's own log on its nodes to fn (called
	// from several goroutines) until every node's command ended or ctx
	// ends.
	RuntimeLogs(ctx context.Context, name string, req api.RuntimeLogRequest, fn func(api.RuntimeLogLine)) error
	// Exec runs a one-off command in the deployment's active release on
	// one node, streaming its output to fn, and returns its exit status
	// (the node it ran on, too).
	Exec(ctx context.Context, name string, req api.ExecRequest, fn func(api.ExecLine)) (node string, exitCode int, err error)
	// ExecTerminal runs it on a terminal: stdin is what the user types,
	// out gets the terminal's output, resize the window sizes.
	ExecTerminal(ctx context.Context, name string, req api.ExecRequest, stdin io.Reader, out io.Writer, resize <-chan [2]int) (node string, exitCode int, err error)
}
