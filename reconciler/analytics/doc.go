// Package analytics collects traffic and disk metrics of deployments from
// their nodes: a Collector reads, every interval and with one SSH command
// per node, what nginx appended to each app's access log and the app's
// disk usage, aggregates requests per minute, and keeps each deployment's
// metrics record (with its read positions) in the store's settings.
// store.LoadMetrics reads such a record back.
//
// It is not a reconciler: it changes nothing on nodes or in specs, and
// nothing waits on it. It serves no HTTP (the API server reads the
// records).
package analytics
