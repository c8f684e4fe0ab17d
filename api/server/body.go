package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/manifests"
)

// DefaultMaxBodyBytes is the default limit on a request body (4 MiB).
const DefaultMaxBodyBytes = 4 << 20

// bodyTypes are the media types a request body may have. Package
// manifests tells JSON from YAML by itself.
var bodyTypes = map[string]bool{
	"application/json":   true,
	"application/yaml":   true,
	"application/x-yaml": true,
	"text/yaml":          true,
}

// readBody reads r's body within the size limit. A request without a body
// needs no Content-Type and yields nil data; one with a body must carry
// one of bodyTypes (415 otherwise) and be at most MaxBodyBytes (413).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || !bodyTypes[mt] {
		return nil, errorf(http.StatusUnsupportedMediaType,
			"content type %q is not supported: use application/json or application/yaml", ct)
	}
	if r.ContentLength > s.maxBody {
		return nil, &http.MaxBytesError{Limit: s.maxBody}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, errorf(http.StatusBadRequest, "read request body: %v", err)
	}
	return data, nil
}

// decodeBundle reads and strictly decodes every object in r's body, then
// defaults and validates them all. Any problem is a 400 listing every
// problem, field paths prefixed with the document ("document 2
// (Deployment/web): spec.run.port"). Package manifests also refuses a
// bundle naming one object twice, naming both documents.
func (s *Server) decodeBundle(w http.ResponseWriter, r *http.Request) ([]api.Object, error) {
	objs, err := s.decode(w, r, true)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, errorf(http.StatusBadRequest, "the request body holds no objects")
	}
	return objs, nil
}

// decodeOne reads and strictly decodes exactly one object of kind from r's
// body, lets prepare adjust or refuse it, then defaults and validates it.
func (s *Server) decodeOne(w http.ResponseWriter, r *http.Request, kind string, prepare func(api.Object) error) (api.Object, error) {
	objs, err := s.decodeRaw(w, r, false)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, errorf(http.StatusBadRequest, "the request body must hold exactly one object, not %d", len(objs))
	}
	o := objs[0]
	if k := o.GetTypeMeta().Kind; k != kind {
		return nil, badField("kind", "must be %s on /api/v1/%s, not %q", kind, api.Resource(kind), k)
	}
	if prepare != nil {
		if err := prepare(o); err != nil {
			return nil, err
		}
	}
	if err := manifests.Check(objs); err != nil {
		return nil, decodeError(err, false)
	}
	if err := s.checkPolicy(objs, false); err != nil {
		return nil, err
	}
	return o, nil
}

// decodeRaw reads r's body and decodes it strictly (package manifests:
// YAML documents, or JSON — one object, an array or a List).
func (s *Server) decodeRaw(w http.ResponseWriter, r *http.Request, bundle bool) ([]api.Object, error) {
	data, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errorf(http.StatusBadRequest, "the request body is empty")
	}
	objs, err := manifests.DecodeSource("request body", data)
	if err != nil {
		return nil, decodeError(err, bundle)
	}
	// Status is written only by the control plane (manifests ignores it;
	// make sure).
	for _, o := range objs {
		if err := o.SetStatusJSON(json.RawMessage("{}")); err != nil {
			return nil, err
		}
	}
	return objs, nil
}

// decodeError turns the errors of package manifests into a 400 listing every
// problem. In a bundle, each field path is prefixed with its document.
func decodeError(err error, bundle bool) error {
	if errors.Is(err, manifests.ErrTooLarge) {
		return errorf(http.StatusRequestEntityTooLarge, "manifest larger than %d bytes", manifests.MaxBytes)
	}
	var merrs manifests.Errors
	if !errors.As(err, &merrs) {
		return err
	}
	return manifestsError(merrs, bundle)
}

func manifestsError(merrs manifests.Errors, bundle bool) *Error {
	out := &Error{Status: http.StatusBadRequest}
	where := map[string]bool{} // the objects or documents with problems
	for _, e := range merrs {
		field, doc := e.Field, objectName(e.Kind, e.Name)
		if bundle && e.Index > 0 {
			doc = docPrefix(e.Index, e.Kind, e.Name)
			if field != "" {
				field = doc + ": " + field
			} else {
				field = doc
			}
		}
		where[doc] = true
		out.Details = append(out.Details, Detail{Field: field, Reason: e.Reason})
	}
	switch {
	case len(where) > 1 && bundle:
		out.Message = problems(len(merrs), fmt.Sprintf("%d documents", len(where)))
	case len(where) == 1:
		for w := range where {
			out.Message = problems(len(merrs), w)
		}
	default:
		out.Message = problems(len(merrs), "")
	}
	return out
}

// docPrefix names a document of a bundle: "document 2 (Deployment/web)".
func docPrefix(n int, kind, name string) string {
	s := fmt.Sprintf("document %d", n)
	if on := objectName(kind, name); on != "" {
		s += " (" + on + ")"
	}
	return s
}

func objectName(kind, name string) string {
	switch {
	case kind != "" && name != "":
		return kind + "/" + name
	case kind != "":
		return kind
	case name != "":
		return name
	}
	return ""
}

// decode is decodeRaw followed by manifests.Check (defaults, validation).
func (s *Server) decode(w http.ResponseWriter, r *http.Request, bundle bool) ([]api.Object, error) {
	objs, err := s.decodeRaw(w, r, bundle)
	if err != nil {
		return nil, err
	}
	if err := manifests.Check(objs); err != nil {
		return nil, decodeError(err, bundle)
	}
	if err := s.checkPolicy(objs, bundle); err != nil {
		return nil, err
	}
	return objs, nil
}

// checkPolicy refuses (403, every problem with its field path) what this
// server allows no writer: local Nodes unless Config.AllowLocalNodes.
func (s *Server) checkPolicy(objs []api.Object, bundle bool) error {
	err := manifests.CheckPolicy(objs, manifests.Policy{LocalNodes: s.cfg.AllowLocalNodes})
	var merrs manifests.Errors
	if !errors.As(err, &merrs) {
		return err
	}
	e := manifestsError(merrs, bundle)
	e.Status = http.StatusForbidden
	return e
}
