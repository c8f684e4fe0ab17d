// Package api defines Bakery's resource types — Node and Deployment — in the
// Kubernetes shape (apiVersion, kind, metadata, spec, status), together with
// their defaulting and validation.
//
// It is the bottom of Bakery's dependency graph: it imports nothing of
// Bakery's own and knows nothing about storage, HTTP or SSH. Decoding of
// manifests lives in package manifests; persistence in package store.
package api
