// Package server is Bakery's HTTP API: the routes of docs/api.md on
// gorilla/mux, bearer-token authentication (checked by package api/auth),
// request decoding and the mapping of errors to HTTP statuses.
//
// Every handler returns (any, error); one wrapper writes the value as JSON
// or the error as a coded JSON error ([Error]), and logs 4xx at debug and
// 5xx at error. One middleware authenticates everything under /api/ with an
// explicit, commented list of exceptions (see authExceptions).
//
// Objects are decoded strictly by package manifests, defaulted and validated
// before they reach the store; rules that span several objects (one ingress
// host per deployment) are checked inside the store transaction that writes
// them. The package does not reconcile anything and does not know how
// objects are stored: it talks to a [store.Store].
package server
