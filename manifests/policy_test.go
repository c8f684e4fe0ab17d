package manifests_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/manifests"
)

func TestCheckPolicy(t *testing.T) {
	objs, err := manifests.Decode([]byte(`apiVersion: bakery.dev/v1
kind: Node
metadata: {name: self}
spec: {local: true}
---
apiVersion: bakery.dev/v1
kind: Node
metadata: {name: far}
spec: {address: 10.0.0.1}
---
apiVersion: bakery.dev/v1
kind: Secret
metadata: {name: s}
`))
	if err != nil {
		t.Fatal(err)
	}
	type problem struct {
		Index       int
		Kind, Field string
	}
	problems := func(err error) []problem {
		var merrs manifests.Errors
		if err != nil && !errors.As(err, &merrs) {
			t.Fatalf("not Errors: %v", err)
		}
		var out []problem
		for _, e := range merrs {
			out = append(out, problem{e.Index, e.Kind, e.Field})
		}
		return out
	}
	for _, c := range []struct {
		name string
		p    manifests.Policy
		want []problem
	}{
		{"zero policy: no local node", manifests.Policy{}, []problem{{1, api.KindNode, "spec.local"}}},
		{"local nodes allowed", manifests.Policy{LocalNodes: true}, nil},
		{"kinds", manifests.Policy{LocalNodes: true, Kinds: []string{api.KindSecret}}, []problem{{1, api.KindNode, "kind"}, {2, api.KindNode, "kind"}}},
		{"kinds and local", manifests.Policy{Kinds: api.Kinds()}, []problem{{1, api.KindNode, "spec.local"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, problems(manifests.CheckPolicy(objs, c.p))); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
