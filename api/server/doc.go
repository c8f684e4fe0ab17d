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
// host per deployment) are enforced by the store (store.RuleError, answered
// 409). The package does not reconcile anything and does not know how
// objects are stored: it talks to a [store.Store], and to the control loop
// through the one interface it declares, [Loop] (it imports nothing of
// package reconciler). Request and answer bodies are package api's wire
// types; GitHub is reached through package api/github.
package server
