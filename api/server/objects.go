package server

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// List is the answer of GET /api/v1/{resource}: "NodeList" or
// "DeploymentList", items sorted by name.
type List struct {
	api.TypeMeta `json:",inline"`
	Items        []api.Object `json:"items"`
}

// Status is the answer of DELETE: {"kind":"Status","status":"Success",
// "details":{"kind":…,"name":…}}.
type Status struct {
	Kind    string        `json:"kind"`
	Status  string        `json:"status"`
	Details StatusDetails `json:"details"`
}

// StatusDetails names the object a Status is about.
type StatusDetails struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// kindOf returns the kind named by the {resource} path variable.
func kindOf(r *http.Request) string {
	switch mux.Vars(r)["resource"] {
	case "nodes":
		return api.KindNode
	case "manifestsources":
		return api.KindManifestSource
	case "secrets":
		return api.KindSecret
	}
	return api.KindDeployment
}

// nameOf returns the {name} path variable, or a 400 when it cannot name an
// object.
func nameOf(r *http.Request) (string, error) {
	name := mux.Vars(r)["name"]
	if reason := api.ValidateName(name); reason != "" {
		return "", badField("metadata.name", "%s", reason)
	}
	return name, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) (any, error) {
	kind := kindOf(r)
	sel, err := api.ParseSelector(r.URL.Query().Get("labelSelector"))
	if err != nil {
		return nil, badField("labelSelector", "%v", err)
	}
	items, err := s.store.List(r.Context(), kind, store.ListOptions{Selector: sel})
	if err != nil {
		return nil, err
	}
	if items == nil {
		items = []api.Object{}
	}
	for i, o := range items {
		if items[i], err = present(r, o); err != nil {
			return nil, err
		}
	}
	return List{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: kind + "List"}, Items: items}, nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) (any, error) {
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	o, err := s.store.Get(r.Context(), kindOf(r), name)
	if err != nil {
		return nil, err
	}
	return present(r, o)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) (any, error) {
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	o, err := s.store.Get(r.Context(), kindOf(r), name)
	if err != nil {
		return nil, err
	}
	return api.ObjectStatus{Metadata: *o.GetObjectMeta(), Status: Redact(o).StatusJSON()}, nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) (any, error) {
	kind := kindOf(r)
	o, err := s.decodeOne(w, r, kind, nil)
	if err != nil {
		return nil, err
	}
	if err := s.sealSecrets(r.Context(), []api.Object{o}, false); err != nil {
		return nil, err
	}
	// The store enforces the rules spanning several objects.
	out, err := s.store.Create(r.Context(), o)
	if err != nil {
		return nil, err
	}
	w.Header().Set("Location", "/api/v1/"+api.Resource(kind)+"/"+out.GetObjectMeta().Name)
	return Redact(out), nil
}

func (s *Server) replace(w http.ResponseWriter, r *http.Request) (any, error) {
	kind := kindOf(r)
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	o, err := s.decodeOne(w, r, kind, func(o api.Object) error {
		if n := o.GetObjectMeta().Name; n != name {
			return badField("metadata.name", "%q does not match %q in the path", n, name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.sealSecrets(r.Context(), []api.Object{o}, false); err != nil {
		return nil, err
	}
	out, err := s.store.Update(r.Context(), o)
	if err != nil {
		return nil, err
	}
	return Redact(out), nil
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) (any, error) {
	kind := kindOf(r)
	name, err := nameOf(r)
	if err != nil {
		return nil, err
	}
	if kind == api.KindDeployment && s.cfg.Loop != nil {
		// The control loop removes the app from its nodes first, then
		// deletes the object (202: in progress).
		o, err := s.store.Get(r.Context(), kind, name)
		if err != nil {
			return nil, err
		}
		m := o.GetObjectMeta()
		purge := r.URL.Query().Get("purgeData") == "true" && m.Annotations[api.AnnotationPurgeData] != "true"
		if m.Annotations[api.AnnotationDeletionRequested] == "" || purge {
			if m.Annotations == nil {
				m.Annotations = map[string]string{}
			}
			if m.Annotations[api.AnnotationDeletionRequested] == "" {
				m.Annotations[api.AnnotationDeletionRequested] = api.Now().Format(time.RFC3339)
			}
			if purge {
				m.Annotations[api.AnnotationPurgeData] = "true"
			}
			m.ResourceVersion = ""
			if _, err := s.store.Update(r.Context(), o); err != nil {
				return nil, err
			}
		}
		return withStatus{http.StatusAccepted, Status{Kind: "Status", Status: "Deleting", Details: StatusDetails{Kind: kind, Name: name}}}, nil
	}
	if err := s.store.Delete(r.Context(), kind, name, ""); err != nil {
		return nil, err
	}
	return Status{Kind: "Status", Status: "Success", Details: StatusDetails{Kind: kind, Name: name}}, nil
}
