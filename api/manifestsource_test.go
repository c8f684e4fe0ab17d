package api

import (
	"strings"
	"testing"
)

func TestManifestSourceAllowedKinds(t *testing.T) {
	for _, c := range []struct {
		kinds []string
		want  string // the problem's field, "" for none
	}{
		{nil, ""},
		{[]string{KindDeployment, KindNode, KindManifestSource, KindSecret}, ""},
		{[]string{"Rollout"}, "spec.allowedKinds[0]"},
		{[]string{KindSecret, KindSecret}, "spec.allowedKinds[1]"},
	} {
		ms := &ManifestSource{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindManifestSource}, Metadata: ObjectMeta{Name: "s"},
			Spec: ManifestSourceSpec{Repo: "/srv/m", AllowedKinds: c.kinds}}
		ms.Default()
		if len(c.kinds) == 0 && strings.Join(ms.Spec.AllowedKinds, ",") != "Deployment,Secret" {
			t.Fatalf("default %v", ms.Spec.AllowedKinds)
		}
		var got string
		if es := ms.Validate(); len(es) > 0 {
			got = es[0].Field
		}
		if got != c.want {
			t.Errorf("%v: problem at %q, want %q (%v)", c.kinds, got, c.want, ms.Validate())
		}
	}
}
