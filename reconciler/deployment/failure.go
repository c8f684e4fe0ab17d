package deployment

import (
	"context"
	"errors"

	"bakery.dev/bakery/sshexec"
)

// FailureClass says what a failed step means for the revision it rolls out.
type FailureClass int

const (
	// FailureRevision: the revision itself failed (its build or tests, its
	// start, its health check, or a step of Bakery's that the node
	// refused). The rollout ends failed, the old slot keeps serving, and
	// the revision is not tried again until something changes
	// (status.failedAttempt).
	FailureRevision FailureClass = iota
	// FailureInfrastructure: the node could not be worked with (it is
	// unreachable, the connection dropped, authentication or the host key
	// failed, a step of Bakery's own timed out talking to it, its disk is
	// full). Not a verdict on the revision: the rollout waits for the node
	// (Progressing, reason WaitingForNode or NodeDiskFull) and the
	// reconcile is retried with a capped backoff.
	FailureInfrastructure
)

func (c FailureClass) String() string {
	if c == FailureInfrastructure {
		return "infrastructure"
	}
	return "revision"
}

// revisionSteps run the revision's own code: the build (with its
// tests), the start of its process and its health check. Their exit
// status and their timeouts are the revision's.
var revisionSteps = map[ActionType]bool{ActBuild: true, ActStart: true, ActHealth: true}

// ClassifyFailure says whether step's error err is an infrastructure or
// a revision failure. A full disk, a connection that failed or dropped,
// refused authentication or a changed host key are the node's, whatever
// the step; a timeout or cancellation is the node's for Bakery's own
// steps (fetch, install, switch, …) and the revision's for the build, the
// start and the health check; any other failure (a non-zero exit status)
// is the revision's.
func ClassifyFailure(step ActionType, err error) FailureClass {
	switch {
	case err == nil:
		return FailureRevision
	case errors.Is(err, sshexec.ErrNoSpace),
		errors.Is(err, sshexec.ErrConnection), errors.Is(err, sshexec.ErrClosed),
		errors.Is(err, sshexec.ErrAuth), errors.Is(err, sshexec.ErrHostKeyMismatch):
		return FailureInfrastructure
	case revisionSteps[step]:
		return FailureRevision
	case errors.Is(err, sshexec.ErrTimeout), errors.Is(err, sshexec.ErrCanceled),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return FailureInfrastructure
	}
	return FailureRevision
}

// stepError is a failed step of a node's plan, with its class.
type stepError struct {
	step  ActionType
	class FailureClass
	err   error
}

func (e *stepError) Error() string { return string(e.step) + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// infraError reports whether err is a node's failure of the
// infrastructure class: a step classified so, or an observation that
// failed (the node is then waited for, whatever the error).
func infraError(err error) bool {
	var se *stepError
	if errors.As(err, &se) {
		return se.class == FailureInfrastructure
	}
	return err != nil
}

// diskFull reports whether err says a node's disk is full.
func diskFull(err error) bool { return errors.Is(err, sshexec.ErrNoSpace) }
