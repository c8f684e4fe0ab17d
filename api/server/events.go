package server

import (
	"net/http"
	"strings"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// listEvents answers GET /api/v1/events?object=Kind/name&limit=N: the
// object's events (all objects' without object), newest first. The object
// need not exist: events outlive it. 503 when the store keeps no events.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) (any, error) {
	es, ok := s.store.(store.Events)
	if !ok {
		return nil, errorf(http.StatusServiceUnavailable, "this store keeps no events")
	}
	object := r.URL.Query().Get("object")
	if object != "" {
		kind, name, ok := strings.Cut(object, "/")
		if !ok {
			return nil, badField("object", "must be Kind/name, such as Deployment/hello")
		}
		if _, err := api.New(kind); err != nil {
			return nil, badField("object", "%v", err)
		}
		if msg := api.ValidateName(name); msg != "" {
			return nil, badField("object", "name %s", msg)
		}
	}
	limit, err := intParam(r, "limit", 0)
	if err != nil {
		return nil, err
	}
	items, err := es.ListEvents(r.Context(), object, int(limit))
	if err != nil {
		return nil, err
	}
	if items == nil {
		items = []*api.Event{}
	}
	return api.EventList{Items: items}, nil
}
