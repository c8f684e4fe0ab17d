package api

import (
	"encoding/json"
	"fmt"
	"time"
)

// Group and Version name Bakery's API; APIVersion is what manifests carry.
const (
	Group      = "bakery.dev"
	Version    = "v1"
	APIVersion = Group + "/" + Version
)

// TypeMeta names the kind of an object, as in Kubernetes.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the metadata every object carries. Users write Name, Labels
// and Annotations; the store owns UID, Generation, ResourceVersion and
// CreationTimestamp.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`

	UID string `json:"uid,omitempty"`
	// Generation increases on every change of spec (and only then).
	Generation int64 `json:"generation,omitempty"`
	// ResourceVersion changes on every write; a write that carries a stale
	// one is refused with a conflict.
	ResourceVersion   string `json:"resourceVersion,omitempty"`
	CreationTimestamp *Time  `json:"creationTimestamp,omitempty"`
}

// Time is a timestamp that encodes as RFC 3339 in UTC with second precision,
// as Kubernetes' metav1.Time does, so that objects round-trip through YAML
// and JSON unchanged.
type Time struct{ time.Time }

// NewTime truncates t to seconds and returns it as a *Time.
func NewTime(t time.Time) *Time { return &Time{t.UTC().Truncate(time.Second)} }

// Now is NewTime(time.Now()).
func Now() *Time { return NewTime(time.Now()) }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339))
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be an RFC 3339 time string")
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return fmt.Errorf("must be an RFC 3339 time: %v", err)
	}
	t.Time = v.UTC().Truncate(time.Second)
	return nil
}

// Duration is a time.Duration written as a Go duration string ("30s", "2m").
type Duration struct{ time.Duration }

// D returns a Duration of d.
func D(d time.Duration) Duration { return Duration{d} }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf(`must be a duration string such as "30s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`must be a duration such as "30s" or "2m": %q`, s)
	}
	d.Duration = v
	return nil
}

// ConditionStatus is True, False or Unknown.
type ConditionStatus string

// Condition statuses.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition types: one vocabulary for every kind.
const (
	// Deployments.
	ConditionReady       = "Ready"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
	// ConditionPinned is True while an action's commit pin (a rollback,
	// a redeploy) holds the deployment at a commit instead of following
	// its ref; its reason is RolledBack or Redeployed. It is removed
	// (not set False) when no pin holds, as Flux removes its
	// abnormal-true conditions once resolved.
	ConditionPinned = "Pinned"
	// Nodes.
	ConditionReachable = "Reachable"
	// Both: a terminal problem that retrying cannot fix; the reason names it.
	ConditionStalled = "Stalled"
)

// Condition is one aspect of an object's observed state, as in Kubernetes.
type Condition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
	ObservedGeneration int64           `json:"observedGeneration,omitempty"`
	LastTransitionTime *Time           `json:"lastTransitionTime,omitempty"`
}

// FindCondition returns the condition of type t, or nil.
func FindCondition(conds []Condition, t string) *Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// SetCondition adds or updates c in conds. LastTransitionTime changes only
// when the status changes (it is set to now when c does not carry one).
func SetCondition(conds *[]Condition, c Condition) {
	if c.LastTransitionTime == nil {
		c.LastTransitionTime = Now()
	}
	if old := FindCondition(*conds, c.Type); old != nil {
		if old.Status == c.Status && old.LastTransitionTime != nil {
			c.LastTransitionTime = old.LastTransitionTime
		}
		*old = c
		return
	}
	*conds = append(*conds, c)
}

// RemoveCondition removes the condition of type t from conds, if any.
func RemoveCondition(conds *[]Condition, t string) {
	out := (*conds)[:0]
	for _, c := range *conds {
		if c.Type != t {
			out = append(out, c)
		}
	}
	*conds = out
}

// IsTrue reports whether conds has condition t with status True.
func IsTrue(conds []Condition, t string) bool {
	c := FindCondition(conds, t)
	return c != nil && c.Status == ConditionTrue
}
