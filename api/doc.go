// Package api defines Bakery's resource types — Node and Deployment — in the
// Kubernetes shape (apiVersion, kind, metadata, spec, status), together with
// their defaulting and validation; and the wire types of the HTTP API
// (wire.go: request and answer bodies that the server, the Go client, the
// CLI and the web UI share) with the values the API server hands to the
// control loop (ActionRequest, Push, RuntimeLogRequest, RepoKey).
//
// It is the bottom of Bakery's dependency graph: it imports nothing of
// Bakery's own and knows nothing about storage, HTTP or SSH. Decoding of
// manifests lives in package manifests; persistence in package store.
package api
