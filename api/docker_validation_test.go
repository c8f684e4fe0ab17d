package api

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func validDockerDeployment() *Deployment {
	d := validDeployment()
	d.Spec.Runtime = RuntimeDocker
	d.Spec.Run.Command = ""
	d.Spec.Docker = &DockerSpec{Dockerfile: "deploy/Dockerfile.prod", BuildArgs: map[string]string{"NODE_VERSION": "20", "FLAGS": "a b 'c' $HOME"}}
	d.Default()
	return d
}

// Everything runtime docker hands to the node's shell is checked here,
// with the field path of the offending value.
func TestDockerValidation(t *testing.T) {
	if es := validDockerDeployment().Validate(); es != nil {
		t.Fatalf("valid docker deployment rejected: %v", es)
	}
	tests := []struct {
		name   string
		mutate func(d *Deployment)
		want   []string
	}{
		{"network", func(d *Deployment) { d.Spec.Docker.Network = "none" }, []string{"spec.docker.network"}},
		{"network injection", func(d *Deployment) { d.Spec.Docker.Network = "host; reboot" }, []string{"spec.docker.network"}},
		{"absolute dockerfile", func(d *Deployment) { d.Spec.Docker.Dockerfile = "/etc/passwd" }, []string{"spec.docker.dockerfile"}},
		{"dockerfile outside", func(d *Deployment) { d.Spec.Docker.Dockerfile = "a/../../x" }, []string{"spec.docker.dockerfile"}},
		{"dockerfile option", func(d *Deployment) { d.Spec.Docker.Dockerfile = "-f" }, []string{"spec.docker.dockerfile"}},
		{"dockerfile shell", func(d *Deployment) { d.Spec.Docker.Dockerfile = "Dockerfile $(id)" }, []string{"spec.docker.dockerfile"}},
		{"dockerfile empty segment", func(d *Deployment) { d.Spec.Docker.Dockerfile = "a//Dockerfile" }, []string{"spec.docker.dockerfile"}},
		{"build arg name", func(d *Deployment) { d.Spec.Docker.BuildArgs["X=1 --network"] = "v" }, []string{`spec.docker.buildArgs["X=1 --network"]`}},
		{"build arg reserved", func(d *Deployment) { d.Spec.Docker.BuildArgs["BAKERY_COMMIT"] = "v" }, []string{"spec.docker.buildArgs.BAKERY_COMMIT"}},
		{"build arg newline", func(d *Deployment) { d.Spec.Docker.BuildArgs["FLAGS"] = "a\nb" }, []string{"spec.docker.buildArgs.FLAGS"}},
		{"env newline", func(d *Deployment) { d.Spec.Run.Env[0].Value = "two\nlines" }, []string{"spec.run.env[0].value"}},
		{"build steps", func(d *Deployment) { d.Spec.Build.Test = "npm test" }, []string{"spec.build.test"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := validDockerDeployment()
			tc.mutate(d)
			if diff := cmp.Diff(tc.want, fields(d.Validate())); diff != "" {
				t.Fatalf("field paths (-want +got):\n%s", diff)
			}
		})
	}
	// Multi-line values stay fine for systemd (its env file quotes them).
	d := validDeployment()
	d.Spec.Run.Env[0].Value = "two\nlines"
	if es := d.Validate(); es != nil {
		t.Fatalf("systemd env with a newline rejected: %v", es)
	}
}
