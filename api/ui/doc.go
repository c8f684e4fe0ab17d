// Package ui is Bakery's web UI: server-rendered pages (html/template)
// embedded in the binary, with vendored htmx and one small script of its
// own, behind login sessions: the session cookie and the CSRF checks
// are here, the users, sessions, password checks and login rate limits
// in package api/auth.
//
// The UI never touches objects itself: every read and every change goes
// through the HTTP API's own handlers, called in-process (Config.API)
// with the logged-in user as the caller, so that the UI and the CLI share
// validation, apply, diff and actions — and the users and API tokens of
// the settings page (/api/v1/users, /api/v1/tokens). Only logging in and
// the first user's setup use package api/auth directly: they come before
// there is a caller. The UI authenticates browsers by session cookie; the
// API's bearer tokens are untouched. It is mounted by
// package api/server under /ui/.
//
// It is not an API: its routes answer HTML (and two SSE streams that pass
// the API's streams through) for browsers, and may change at any time.
package ui
