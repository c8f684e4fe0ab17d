package manager

import (
	"context"
	"net/http"

	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/sealed"
	"bakery.dev/bakery/reconciler/nodeconn"
)

// The Manager is the control loop the API server drives: it implements
// the interface api/server declares for it (server.Loop: PublicKey,
// VerifyNode, DeploymentAction, QueuePush, SyncSource, RuntimeLogs,
// ResealIdentity), with request and result types from package api, and
// cmd/bakery plugs it in. The server does not import this package: the
// errors it must answer with a particular HTTP status say so themselves
// with a Code method (server.CodedError).

// ResealIdentity seals the control plane's stored SSH identity again with
// kr's current key (see nodeconn.ResealIdentity); a store that keeps
// no settings holds no identity, and nothing changes.
func (m *Manager) ResealIdentity(ctx context.Context, kr *sealed.Keyring) (bool, error) {
	ss, ok := m.cfg.Store.(store.Settings)
	if !ok {
		return false, nil
	}
	return nodeconn.ResealIdentity(ctx, ss, kr)
}

// unavailableError is an error the API answers with 503.
type unavailableError string

func (e unavailableError) Error() string { return string(e) }

// Code is the HTTP status the API answers with: 503.
func (e unavailableError) Code() int { return http.StatusServiceUnavailable }
