package manager

import "net/http"

// The Manager is the control loop the API server drives: it implements
// the interface api/server declares for it (server.Loop: PublicKey,
// VerifyNode, DeploymentAction, QueuePush, SyncSource, RuntimeLogs), with request and result types from package api, and
// cmd/bakery plugs it in. The server does not import this package: the
// errors it must answer with a particular HTTP status say so themselves
// with a Code method (server.CodedError).

// unavailableError is an error the API answers with 503.
type unavailableError string

func (e unavailableError) Error() string { return string(e) }

// Code is the HTTP status the API answers with: 503.
func (e unavailableError) Code() int { return http.StatusServiceUnavailable }
