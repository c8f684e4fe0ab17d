package server

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"time"
)

// recorder remembers the status a handler wrote, for the access log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	token  string // name of the authenticating token, set by authenticate
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines (SSE).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// accessLog logs one line per request at info — method, path, status,
// duration — and turns a panic into a 500. It never logs headers (the
// Authorization header holds a secret), query strings or bodies.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeJSON(rec, http.StatusInternalServerError, errorf(http.StatusInternalServerError, "internal server error").Body())
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status,
				"duration", time.Since(start), "bytes", rec.bytes, "remote", r.RemoteAddr}
			if rec.token != "" {
				attrs = append(attrs, "token", rec.token)
			}
			s.log.InfoContext(r.Context(), "http request", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}
