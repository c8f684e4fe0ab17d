package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"bakery.dev/bakery/api"
)

// Sentinel errors an *APIError matches with errors.Is, by HTTP status code.
var (
	ErrBadRequest      = errors.New("bad request")
	ErrUnauthorized    = errors.New("unauthorized")
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrTooLarge        = errors.New("request body too large")
	ErrUnsupportedType = errors.New("unsupported media type")
)

var codeErrors = map[int]error{
	http.StatusBadRequest:            ErrBadRequest,
	http.StatusUnauthorized:          ErrUnauthorized,
	http.StatusNotFound:              ErrNotFound,
	http.StatusConflict:              ErrConflict,
	http.StatusRequestEntityTooLarge: ErrTooLarge,
	http.StatusUnsupportedMediaType:  ErrUnsupportedType,
}

// Detail is one problem the server found, named by its field path
// ("document 2 (Deployment/web): spec.run.port").
type Detail = api.ErrorDetail

// APIError is an error answered by the server (its body, api.ErrorBody):
// its HTTP status code, message and, for bad input, every problem found.
type APIError api.ErrorBody

// Error returns the message followed by every detail.
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", msg, e.Code)
	for _, d := range e.Details {
		b.WriteString("; ")
		if d.Field != "" {
			b.WriteString(d.Field + ": ")
		}
		b.WriteString(d.Reason)
	}
	return b.String()
}

// Is reports whether target is the sentinel error for e's status code, so
// that errors.Is(err, client.ErrNotFound) works on wrapped API errors.
func (e *APIError) Is(target error) bool {
	s, ok := codeErrors[e.Code]
	return ok && s == target
}

// IsNotFound reports whether err is (or wraps) a 404 from the server.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err is (or wraps) a 409 from the server.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsUnauthorized reports whether err is (or wraps) a 401 from the server.
func IsUnauthorized(err error) bool { return errors.Is(err, ErrUnauthorized) }

// IsInvalid reports whether err is (or wraps) a 400 from the server.
func IsInvalid(err error) bool { return errors.Is(err, ErrBadRequest) }
