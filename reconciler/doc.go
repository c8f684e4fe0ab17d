// Package reconciler is the reconcile contract of Bakery's control loop:
// a Request names an object ("Deployment/hello"), a Reconciler brings the
// world in line with that object's spec and returns a Result that says
// when to look again; Terminal marks errors retrying cannot fix, and a
// Superseder says what makes a reconcile in flight obsolete. The condition
// reasons that several reconcilers give (InvalidSpec, Suspended,
// SourceUnavailable) are named here once.
//
// Reconcilers are level-based: a request carries identity only, and the
// reconciler reads the current spec and observes the world afresh.
//
// The package holds only the contract. The controller that runs
// reconcilers is reconciler/internal/controller, the wiring
// reconciler/manager, and each kind's reconciler has its own package
// (reconciler/deployment, reconciler/node, reconciler/manifestsource).
// Nothing under reconciler/ serves HTTP or imports the API server.
package reconciler
