package manifests

import (
	"slices"
	"strings"

	"bakery.dev/bakery/api"
)

// AllowLocalNodesFlag is the server flag that lets writers create Nodes
// with spec.local (commands run on the control plane's own host);
// AllowLocalNodesEnv is its variable.
const (
	AllowLocalNodesFlag = "--allow-local-nodes"
	AllowLocalNodesEnv  = "BAKERY_ALLOW_LOCAL_NODES"
)

// LocalNodesRefused is the reason given for a local Node when the server
// does not allow them.
const LocalNodesRefused = "a local node runs commands on the control plane's own host, as the server's user; " +
	"this server refuses local nodes (start it with 'bakery server " + AllowLocalNodesFlag + "', or " +
	AllowLocalNodesEnv + "=true, to allow them)"

// Policy says what a writer may put into the store beyond validity: what
// the server allows every writer, and what a manifest source allows its
// repository. The zero Policy allows every kind and no local Node.
type Policy struct {
	// LocalNodes allows Nodes with spec.local (the server's
	// --allow-local-nodes).
	LocalNodes bool
	// Kinds, when not empty, are the only kinds allowed; Owner names who
	// set them, for the message ("ManifestSource/site (spec.allowedKinds)").
	Kinds []string
	Owner string
}

// CheckPolicy returns every object of objs that p refuses, as Errors (each
// with Index, Kind, Name and Field, as Check), or nil.
func CheckPolicy(objs []api.Object, p Policy) error {
	var l errList
	for i, o := range objs {
		if o == nil {
			continue
		}
		kind, name := o.GetTypeMeta().Kind, o.GetObjectMeta().Name
		if len(p.Kinds) > 0 && !slices.Contains(p.Kinds, kind) {
			who := "this writer"
			if p.Owner != "" {
				who = p.Owner + " (spec.allowedKinds)"
			}
			l.add(&Error{Index: i + 1, Kind: kind, Name: name, Field: "kind",
				Reason: who + " may write only " + strings.Join(p.Kinds, ", ") + ", not " + kind})
			continue
		}
		if n, ok := o.(*api.Node); ok && n.Spec.Local && !p.LocalNodes {
			l.add(&Error{Index: i + 1, Kind: kind, Name: name, Field: "spec.local", Reason: LocalNodesRefused})
		}
	}
	return l.err()
}
