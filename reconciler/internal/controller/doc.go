// Package controller is the machinery that runs a reconciler.Reconciler:
// it turns store events, manual requests and a periodic resync into keys
// on a work queue, hands each key to one worker at a time (across control
// planes through a store.Locker), and schedules the next reconcile from
// the Result and error, as documented on reconciler.Result.
//
// It is generic: it knows no field of any kind of object. What besides a
// new generation supersedes a reconcile in flight is the reconciler's to
// say (reconciler.Superseder). It does not wire controllers together
// (reconciler/manager does) and is internal to the control loop.
package controller
