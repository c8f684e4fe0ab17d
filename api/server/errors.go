package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/manifests"
)

// Error is an error with an HTTP status, written as the JSON error body of
// docs/api.md (its Body, api.ErrorBody): {"code": 400, "message": "…",
// "details": [{"field", "reason"}]}.
//
// The status lives in Status (the body's "code") because Go does not allow
// a field and a method both named Code.
type Error struct {
	Status  int
	Message string
	Details []Detail
}

// Detail is one problem with one field of a request.
type Detail = api.ErrorDetail

// Code returns the HTTP status of the error.
func (e *Error) Code() int { return e.Status }

// Body is the error as the API answers it.
func (e *Error) Body() api.ErrorBody {
	return api.ErrorBody{Code: e.Status, Message: e.Message, Details: e.Details}
}

func (e *Error) Error() string {
	s := e.Message
	for _, d := range e.Details {
		if strings.Contains(e.Message, d.Reason) {
			continue
		}
		s += "; "
		if d.Field != "" {
			s += d.Field + ": "
		}
		s += d.Reason
	}
	return s
}

// CodedError is any error that knows its HTTP status. *Error is one; other
// packages' errors may implement it to choose their status.
type CodedError interface {
	error
	Code() int
}

var _ CodedError = (*Error)(nil)

// errorf returns an *Error with status code and a formatted message.
func errorf(code int, format string, args ...any) *Error {
	return &Error{Status: code, Message: fmt.Sprintf(format, args...)}
}

// badField returns a 400 naming one field.
func badField(field, format string, args ...any) *Error {
	reason := fmt.Sprintf(format, args...)
	return &Error{Status: http.StatusBadRequest, Message: field + ": " + reason,
		Details: []Detail{{Field: field, Reason: reason}}}
}

// toError maps any error to the *Error written to the client. Errors that
// are not classified become a generic 500; their text is only logged.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var coded CodedError
	if errors.As(err, &coded) {
		return &Error{Status: coded.Code(), Message: coded.Error()}
	}
	var merrs manifests.Errors
	if errors.As(err, &merrs) {
		return manifestsError(merrs, false)
	}
	var ferrs api.FieldErrors
	if errors.As(err, &ferrs) {
		out := &Error{Status: http.StatusBadRequest, Message: problems(len(ferrs), "")}
		for _, f := range ferrs {
			out.Details = append(out.Details, Detail(f))
		}
		return out
	}
	var rerr *store.RuleError
	if errors.As(err, &rerr) {
		return ruleError(rerr, nil)
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooLarge.Limit)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, store.ErrAlreadyExists), errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Message: err.Error()}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Message: err.Error()}
	case errors.Is(err, store.ErrCorrupt):
		// Shown to the operator: a hand-edited or truncated file needs a human.
		return &Error{Status: http.StatusInternalServerError, Message: err.Error()}
	}
	return &Error{Status: http.StatusInternalServerError, Message: "internal server error"}
}

// problems returns "1 problem" or "N problems", followed by " in where".
func problems(n int, where string) string {
	s := fmt.Sprintf("%d problems", n)
	if n == 1 {
		s = "1 problem"
	}
	if where != "" {
		s += " in " + where
	}
	return s
}

// handlerFunc is what every route implements: the value to write as JSON,
// or an error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// wrap turns h into an http.Handler that writes h's value as JSON with
// status ok (200 or 201), or h's error as a coded JSON error.
// withStatus lets a handler answer with a status other than the route's
// usual one (202 for a delete that is still in progress).
type withStatus struct {
	code int
	v    any
}

func (s *Server) wrap(ok int, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := h(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if ws, isWS := v.(withStatus); isWS {
			writeJSON(w, ws.code, ws.v)
			return
		}
		writeJSON(w, ok, v)
	})
}

// writeError logs err (4xx at debug, 5xx at error) and writes it as JSON.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	level := slog.LevelDebug
	switch {
	case e.Status >= 500 && errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody will read the answer.
		e = errorf(http.StatusServiceUnavailable, "request canceled")
	case e.Status >= 500:
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", err)
	writeJSON(w, e.Status, e.Body())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only Bakery's own types are written; failure is a bug.
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorf(code, "internal server error: encode response").Body())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
