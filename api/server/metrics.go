package server

import (
	"net/http"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// metrics answers GET /api/v1/deployments/{name}/metrics: the traffic
// and disk metrics the control plane collected (api.DeploymentMetrics).
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) (any, error) {
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Get(r.Context(), api.KindDeployment, name); err != nil {
		return nil, err
	}
	ss, ok := s.store.(store.Settings)
	if !ok {
		return nil, errorf(http.StatusNotImplemented, "this store keeps no metrics")
	}
	return store.LoadMetrics(r.Context(), ss, name)
}
