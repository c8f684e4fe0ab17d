// Package rolloutlog records a rollout as it runs: Sink numbers the log
// lines of every node's commands, cleans them (masks secret values,
// escapes control characters, bounds line length) and appends them to the
// store in batches with back-pressure; Recorder keeps the rollout record
// (per-node steps, their timing and results) up to date.
//
// It decides nothing about a rollout — which steps run, or how it ends,
// is reconciler/deployment's — and does not prune old rollouts (the
// deployment reconciler's record step does).
package rolloutlog
