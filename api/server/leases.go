package server

import (
	"context"
	"net/http"

	"bakery.dev/bakery/api"
)

// Cluster is what the API asks of the control planes' coordination
// (pgstore.Coordinator implements it).
type Cluster interface {
	Leases(ctx context.Context) (*api.Leases, error)
}

// leases answers GET /api/v1/leases: the control planes sharing the store
// and which of them reconciles which object now.
func (s *Server) leases(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.cfg.Cluster == nil {
		return &api.Leases{Server: s.cfg.ServerID, Servers: []api.ControlPlane{{ID: s.cfg.ServerID}}, Leases: []api.Lease{}}, nil
	}
	return s.cfg.Cluster.Leases(r.Context())
}
