// Package client is a small Go client for Bakery's HTTP API (docs/api.md):
// reading, creating, replacing and deleting Nodes and Deployments, applying
// bundles (with server-side dry runs) and asking the server's version.
//
// Every call takes a context and is bounded by a per-request timeout (see
// WithTimeout). Errors answered by the server decode into *APIError, which
// carries the HTTP status code and every field problem; classify them with
// errors.Is (ErrNotFound, ErrConflict, ErrUnauthorized, …) or the
// IsNotFound/IsConflict/IsUnauthorized helpers.
//
// The client does not decode manifests (package manifests does) and knows
// nothing of the CLI's configuration file; it is what cmd/bakery uses to
// talk to a server.
package client
