// Package reconciler is Bakery's control loop: it keeps what runs on nodes
// equal to what the specs say.
//
// A Controller feeds object keys ("Deployment/hello") from store events,
// webhooks, manual actions and a periodic resync into a work queue; a
// bounded number of workers hand each key to a Reconciler, never the same
// key to two workers at once. Reconcilers are level-based: a request names
// an object, and the reconciler reads the current spec and observes the
// world afresh. What Result and the returned error mean is documented on
// Reconciler and implemented exactly by Controller.
//
// The package does not serve HTTP and never imports the API server; the
// server asks it for actions through a small interface.
package reconciler
