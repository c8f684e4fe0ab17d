package deployment

import (
	"testing"

	"bakery.dev/bakery/api"
)

func TestLastGoodRepairable(t *testing.T) {
	good := func(fa *api.FailedAttempt) *api.DeploymentStatus {
		return &api.DeploymentStatus{Commit: c1, Revision: 2, SpecHash: "spec1", FailedAttempt: fa}
	}
	tests := []struct {
		name string
		s    *api.DeploymentStatus
		want bool
	}{
		{"a new commit failed under the same spec", good(&api.FailedAttempt{Commit: c2, SpecHash: "spec1"}), true},
		{"a spec change failed (same commit)", good(&api.FailedAttempt{Commit: c1, SpecHash: "spec2"}), false},
		{"a new commit with a spec change failed", good(&api.FailedAttempt{Commit: c2, SpecHash: "spec2"}), false},
		{"a drift repair of the last good revision failed", good(&api.FailedAttempt{Commit: c1, SpecHash: "spec1"}), false},
		{"no failed attempt", good(nil), false},
		{"the first rollout failed: no last good revision", &api.DeploymentStatus{FailedAttempt: &api.FailedAttempt{Commit: c2, SpecHash: "spec1"}}, false},
	}
	for _, tc := range tests {
		if got := lastGoodRepairable(tc.s); got != tc.want {
			t.Errorf("%s: lastGoodRepairable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
