// Package manifests reads and writes Bakery manifests: bundles of objects
// (Nodes, Deployments) written by users as YAML or JSON files.
//
// Decoding is strict. Unknown fields at any depth, duplicate keys, wrong
// types, a missing or wrong apiVersion, an unknown kind and an object
// named twice in one bundle are errors, each reported with where it is —
// source, document index, Kind/name and field path:
//
//	app.yaml: document 2 (Deployment/web): spec.healthCheck.pathh: unknown field (did you mean "path"?)
//
// Every problem of every document is reported at once, as an [Errors]; a
// bundle with any problem yields no objects. Decoding does not default or
// validate specs: [Check] does that, again reporting every problem.
//
// A manifest may carry the output of "bakery get -o yaml": metadata.uid,
// generation, resourceVersion and creationTimestamp are decoded, and status
// is accepted and ignored (status is written only by the control plane).
//
// [Encode] and [EncodeJSON] write objects back in forms [Decode] reads.
// [Load] reads a file, a directory tree or stdin.
//
// The package knows nothing of stores, servers or SSH: it turns bytes
// into objects and back.
package manifests
