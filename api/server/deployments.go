package server

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

func (s *Server) action(w http.ResponseWriter, r *http.Request) (any, error) {
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	if s.cfg.Loop == nil {
		return nil, errorf(http.StatusServiceUnavailable, "this server runs no deployment loop")
	}
	req := api.ActionRequest{Action: api.Action(mux.Vars(r)["action"]), By: TokenName(r.Context()), ID: newRequestID()}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	if len(body) > 0 {
		var in api.ActionOptions
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return nil, errorf(http.StatusBadRequest, "action body: %v", err)
		}
		req.Commit, req.ToRevision, req.RerunRelease, req.Maintenance = in.Commit, in.ToRevision, in.RerunRelease, in.Maintenance
		if in.RerunRelease && req.Action != api.ActionDeploy {
			return nil, badField("rerunRelease", "is only for action deploy")
		}
		if (in.Maintenance != nil) != (req.Action == api.ActionMaintenance) {
			return nil, badField("maintenance", "is for action maintenance, and only there")
		}
	} else if req.Action == api.ActionMaintenance {
		return nil, badField("maintenance", "is for action maintenance, and only there")
	}
	// The loop's errors say their status (CodedError): 409 for an action
	// the deployment's state does not allow, 503 when it rolls nothing out.
	d, err := s.cfg.Loop.DeploymentAction(r.Context(), name, req)
	if err != nil {
		return nil, err
	}
	return api.ActionResponse{Action: req.Action, Request: req.ID, Deployment: d}, nil
}

// newRequestID returns a random id for an action request: the rollout
// that carries the action out records it (api.Rollout.Request).
func newRequestID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) rolloutStore() (store.Rollouts, error) {
	rs, ok := s.store.(store.Rollouts)
	if !ok {
		return nil, errorf(http.StatusServiceUnavailable, "this store keeps no rollouts")
	}
	return rs, nil
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
	return api.RolloutList{Items: items}, nil
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
	return api.LogPage{Items: lines, Next: next}, nil
}
