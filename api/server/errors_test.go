package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/manifests"
)

func TestToError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want *Error
	}{
		{"not found", fmt.Errorf("get: %w", store.ErrNotFound), &Error{Status: 404, Message: "get: not found"}},
		{"exists", fmt.Errorf("x: %w", store.ErrAlreadyExists), &Error{Status: 409, Message: "x: already exists"}},
		{"conflict", store.ErrConflict, &Error{Status: 409, Message: store.ErrConflict.Error()}},
		{"invalid", store.ErrInvalid, &Error{Status: 400, Message: "invalid"}},
		{"corrupt", fmt.Errorf("nodes/a.yaml: %w", store.ErrCorrupt), &Error{Status: 500, Message: "nodes/a.yaml: corrupt stored object"}},
		{"other", errors.New("disk on fire at /secret/path"), &Error{Status: 500, Message: "internal server error"}},
		{"too large", fmt.Errorf("read: %w", &http.MaxBytesError{Limit: 10}), &Error{Status: 413, Message: "request body is larger than 10 bytes"}},
		{"coded", fmt.Errorf("wrapped: %w", errorf(418, "teapot")), &Error{Status: 418, Message: "teapot"}},
		{"field errors", api.FieldErrors{{Field: "spec.a", Reason: "bad"}, {Field: "spec.b", Reason: "worse"}},
			&Error{Status: 400, Message: "2 problems", Details: []Detail{{Field: "spec.a", Reason: "bad"}, {Field: "spec.b", Reason: "worse"}}}},
		{"manifests", manifests.Errors{{Index: 1, Kind: "Node", Name: "n1", Field: "spec.port", Reason: "must be 1-65535"}},
			&Error{Status: 400, Message: "1 problem in Node/n1", Details: []Detail{{Field: "spec.port", Reason: "must be 1-65535"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, toError(tc.err)); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestManifestsErrorInBundle(t *testing.T) {
	got := manifestsError(manifests.Errors{
		{Index: 2, Kind: "Deployment", Name: "web", Field: "spec.run.port", Reason: "must be 1-65534"},
		{Index: 2, Kind: "Deployment", Name: "web", Field: "spec.nodes", Reason: "give spec.nodes"},
		{Index: 3, Reason: "must be a mapping"},
		{Reason: "too many problems: 1 more not shown"},
	}, true)
	want := &Error{Status: 400, Message: "4 problems in 3 documents", Details: []Detail{
		{Field: "document 2 (Deployment/web): spec.run.port", Reason: "must be 1-65534"},
		{Field: "document 2 (Deployment/web): spec.nodes", Reason: "give spec.nodes"},
		{Field: "document 3", Reason: "must be a mapping"},
		{Field: "", Reason: "too many problems: 1 more not shown"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestPanicIsA500(t *testing.T) {
	var logs strings.Builder
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := s.accessLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/x", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"code": 500`) {
		t.Fatalf("panic answered %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "status=500") {
		t.Fatalf("panic not logged:\n%s", logs.String())
	}
}

func TestNeedsToken(t *testing.T) {
	for p, want := range map[string]bool{
		"/api": true, "/api/": true, "/api/v1/nodes": true, "//api/v1/nodes": true,
		"/api/../api/v1/nodes": true, "/healthz": false, "/readyz": false, "/apix": false, "/": false,
	} {
		if got := needsToken(p); got != want {
			t.Errorf("needsToken(%q) = %v, want %v", p, got, want)
		}
	}
}
