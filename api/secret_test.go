package api

import (
	"strings"
	"testing"
)

func TestSecretValidation(t *testing.T) {
	sec := func(data, sealed map[string]string) *Secret {
		return &Secret{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindSecret}, Metadata: ObjectMeta{Name: "db"},
			Spec: SecretSpec{Data: data, Sealed: sealed}}
	}
	for _, tc := range []struct {
		s    *Secret
		want string // "" = valid
	}{
		{sec(map[string]string{"PASSWORD": "x", "_A1": ""}, nil), ""},
		{sec(nil, map[string]string{"PASSWORD": "AQID"}), ""},
		{sec(map[string]string{"1X": "x"}, nil), "spec.data.1X: \"1X\" is not a valid key"},
		{sec(map[string]string{"PORT": "x"}, nil), "spec.data.PORT: PORT is set by Bakery"},
		{sec(map[string]string{"A": "x\x00"}, nil), "spec.data.A: must not contain NUL"},
		{sec(map[string]string{"A": strings.Repeat("x", MaxSecretValue+1)}, nil), "spec.data.A: is 65537 bytes"},
		{sec(map[string]string{"A": "x"}, map[string]string{"A": "AQID"}), "spec.data.A: is also in spec.sealed"},
		{sec(nil, map[string]string{"A": "not base64!"}), "spec.sealed.A: must be a sealed value"},
	} {
		err := tc.s.Validate().Err()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.s.Spec, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: err %v, want %q", tc.s.Spec, err, tc.want)
		}
	}
}

func TestDeploymentSecretRefs(t *testing.T) {
	for _, tc := range []struct {
		mod  func(r *Run)
		want string
	}{
		{func(r *Run) {
			r.EnvFrom = []EnvFromSource{{SecretRef: "db"}, {SecretRef: "api"}}
			r.Env = append(r.Env, EnvVar{Name: "TOKEN", ValueFrom: &EnvVarSource{SecretKeyRef: &SecretKeySelector{Name: "tokens", Key: "STRIPE"}}})
		}, ""},
		{func(r *Run) { r.EnvFrom = []EnvFromSource{{SecretRef: "Db"}} }, "spec.run.envFrom[0].secretRef: \"Db\" must be a DNS-1123 label"},
		{func(r *Run) { r.EnvFrom = []EnvFromSource{{SecretRef: "db"}, {SecretRef: "db"}} }, "spec.run.envFrom[1].secretRef: secret \"db\" is listed twice"},
		{func(r *Run) {
			r.Env = []EnvVar{{Name: "A", Value: "v", ValueFrom: &EnvVarSource{SecretKeyRef: &SecretKeySelector{Name: "db", Key: "A"}}}}
		}, "spec.run.env[0].valueFrom: give value or valueFrom, not both"},
		{func(r *Run) { r.Env = []EnvVar{{Name: "A", ValueFrom: &EnvVarSource{}}} }, "spec.run.env[0].valueFrom.secretKeyRef: is required"},
		{func(r *Run) {
			r.Env = []EnvVar{{Name: "A", ValueFrom: &EnvVarSource{SecretKeyRef: &SecretKeySelector{Name: "", Key: "a-b"}}}}
		}, "spec.run.env[0].valueFrom.secretKeyRef.name: is required; spec.run.env[0].valueFrom.secretKeyRef.key: \"a-b\" is not a valid key"},
	} {
		d := validDeployment()
		tc.mod(&d.Spec.Run)
		d.Default()
		err := d.Validate().Err()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", d.Spec.Run, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err %v, want %q", d.Spec.Run, err, tc.want)
		}
	}
	d := validDeployment()
	d.Spec.Run.EnvFrom = []EnvFromSource{{SecretRef: "b"}, {SecretRef: "a"}}
	d.Spec.Run.Env = append(d.Spec.Run.Env, EnvVar{Name: "X", ValueFrom: &EnvVarSource{SecretKeyRef: &SecretKeySelector{Name: "a", Key: "K"}}})
	if got := strings.Join(d.Spec.SecretNames(), ","); got != "a,b" {
		t.Errorf("SecretNames = %s", got)
	}
}
