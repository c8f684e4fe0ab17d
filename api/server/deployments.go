package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/reconciler/deployment"
	"bakery.dev/bakery/reconciler/manager"
)

// DeploymentActions is the part of the control loop that carries out
// deployment actions (deploy now, redeploy, restart, rollback).
type DeploymentActions interface {
	DeploymentAction(ctx context.Context, name string, req deployment.ActionRequest) (*api.Deployment, error)
}

// ActionResponse is the answer of POST /api/v1/deployments/{name}/actions/{action}.
type ActionResponse struct {
	Action     string          `json:"action"`
	Deployment *api.Deployment `json:"deployment"`
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) (any, error) {
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	da, ok := s.cfg.Actions.(DeploymentActions)
	if !ok {
		return nil, errorf(http.StatusServiceUnavailable, "this server runs no deployment loop")
	}
	req := deployment.ActionRequest{Action: mux.Vars(r)["action"], By: TokenName(r.Context())}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	if len(body) > 0 {
		var in struct {
			Commit     string `json:"commit"`
			ToRevision int64  `json:"toRevision"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return nil, errorf(http.StatusBadRequest, "action body: %v", err)
		}
		req.Commit, req.ToRevision = in.Commit, in.ToRevision
	}
	d, err := da.DeploymentAction(r.Context(), name, req)
	var ae *deployment.ActionError
	switch {
	case errors.As(err, &ae):
		return nil, errorf(http.StatusConflict, "%s", ae.Msg)
	case errors.Is(err, manager.ErrNoDeploymentLoop):
		return nil, errorf(http.StatusServiceUnavailable, "%v", err)
	case err != nil:
		return nil, err
	}
	return ActionResponse{Action: req.Action, Deployment: d}, nil
}

func (s *Server) rolloutStore() (store.Rollouts, error) {
	rs, ok := s.store.(store.Rollouts)
	if !ok {
		return nil, errorf(http.StatusServiceUnavailable, "this store keeps no rollouts")
	}
	return rs, nil
}

// RolloutList is the answer of GET /api/v1/deployments/{name}/rollouts.
type RolloutList struct {
	Items []*api.Rollout `json:"items"`
}

func intParam(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badField(name, "must be a non-negative integer")
	}
	return n, nil
}

func (s *Server) rollouts(w http.ResponseWriter, r *http.Request) (any, error) {
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	rs, err := s.rolloutStore()
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit", 0)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.Get(r.Context(), api.KindDeployment, name); err != nil {
		return nil, err
	}
	items, err := rs.ListRollouts(r.Context(), name, int(limit))
	if err != nil {
		return nil, err
	}
	if items == nil {
		items = []*api.Rollout{}
	}
	return RolloutList{Items: items}, nil
}

func (s *Server) rollout(w http.ResponseWriter, r *http.Request) (any, error) {
	rs, err := s.rolloutStore()
	if err != nil {
		return nil, err
	}
	id := mux.Vars(r)["id"]
	if err := store.CheckRolloutID(id); err != nil {
		return nil, err
	}
	return rs.GetRollout(r.Context(), id)
}

// LogPage is the answer of GET /api/v1/rollouts/{id}/logs.
type LogPage struct {
	Items []api.LogLine `json:"items"`
	// Next is the seq to pass as after= for the following page.
	Next int64 `json:"next"`
}

func (s *Server) rolloutLogs(w http.ResponseWriter, r *http.Request) (any, error) {
	rs, err := s.rolloutStore()
	if err != nil {
		return nil, err
	}
	id := mux.Vars(r)["id"]
	if err := store.CheckRolloutID(id); err != nil {
		return nil, err
	}
	after, err := intParam(r, "after", 0)
	if err != nil {
		return nil, err
	}
	limit, err := intParam(r, "limit", 1000)
	if err != nil {
		return nil, err
	}
	if limit == 0 || limit > 10000 {
		limit = 10000
	}
	lines, err := rs.Logs(r.Context(), id, after, int(limit))
	if err != nil {
		return nil, err
	}
	next := after
	if len(lines) > 0 {
		next = lines[len(lines)-1].Seq
	}
	if lines == nil {
		lines = []api.LogLine{}
	}
	return LogPage{Items: lines, Next: next}, nil
}
