// Package events records the events the reconcilers raise (RolloutFailed,
// NodeUnreachable, DiskLow, PushReceived, …): in the store when it keeps
// events, and to the notification webhooks (reconciler/notify).
//
// It decides nothing about when an event is due: each reconciler raises
// its own on the transitions it sees. It is not the rollout log
// (reconciler/rolloutlog).
package events
