package manager

import (
	"bakery.dev/bakery/api"
)

// helloDeploymentFor is a minimal deployment of repo on node n1.
func helloDeploymentFor(name, repo string) *api.Deployment {
	d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment}, Metadata: api.ObjectMeta{Name: name},
		Spec: api.DeploymentSpec{Source: api.Source{Repo: repo}, Nodes: []string{"n1"}, Run: api.Run{Command: "x"}}}
	d.Default()
	return d
}

func manifestSource(name, repo string) *api.ManifestSource {
	ms := &api.ManifestSource{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindManifestSource},
		Metadata: api.ObjectMeta{Name: name}, Spec: api.ManifestSourceSpec{Repo: repo, Path: "deploy"}}
	ms.Default()
	return ms
}
