package api

// Leases says which control planes share the store and which of them
// reconciles which object right now (GET /api/v1/leases).
type Leases struct {
	// Server is the id of the control plane that answered.
	Server string `json:"server"`
	// Servers are the control planes connected to the store now (only
	// this one with the file store).
	Servers []ControlPlane `json:"servers"`
	// Leases are the objects being reconciled now, one per key.
	Leases []Lease `json:"leases"`
}

// ControlPlane is one running `bakery server`.
type ControlPlane struct {
	// ID is stable for the life of the process: host name, process id
	// and a random suffix.
	ID string `json:"id"`
	// Since is when it connected to the store.
	Since *Time `json:"since,omitempty"`
}

// Lease is the exclusive right of one control plane to reconcile one
// object, held while the reconcile runs.
type Lease struct {
	// Key is "Kind/name", e.g. "Deployment/hello".
	Key    string `json:"key"`
	Server string `json:"server"`
	Since  *Time  `json:"since,omitempty"`
}
