// Package nodescript holds every shell script Bakery runs on a node, each
// a real file (<name>.sh, embedded with go:embed, linted by shellcheck)
// behind one typed Go value.
//
// A script is a [Script]: its Name (the file name without .sh) and a
// Command method that turns the script's input struct into an
// [sshexec.Command]. Inputs become environment variables — and, for file
// contents such as an nginx site or an environment file, the script's
// stdin — which sshexec delivers over the session's stdin, quoted by
// [sshexec.Quote]: no value is ever spliced into script text or appears
// on a remote command line. Command checks the inputs that name paths (an
// app, slot or release must be a single path element, a commit a full
// commit id) and fails with [ErrInvalid] otherwise. The caller adds the
// timeout and the output sink and runs the command on its executor;
// scripts with output have their parser beside them ([ParseAppObservation],
// [ParseNodeObservation], [ParseHaves], [FindCert], [ParseAnalytics]).
//
// Every command also carries three variables: BAKERY_SCRIPT (the script's
// Name: a simulated node recognises scripts by it), BAKERY_ROOT (Bakery's
// directory on the node, [nodefiles.Root], the one constant every script
// derives its paths from) and BAKERY_SUDO (the node's bakery-sudo helper,
// [nodefiles.SudoHelper]).
//
// The scripts are POSIX sh (sshexec runs them with /bin/sh; dash on the
// nodes), start with `set -u` (`set -eu` where every failing command ends
// the script anyway), and document their environment in their header.
//
// This package does not decide what to run: the reconcilers do. It holds
// no state, opens no connections, and generates no configuration files
// (reconciler/nodefiles does).
package nodescript
