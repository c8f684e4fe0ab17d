package deployment

import (
	"os"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/reconciler/internal/simnode"
)

// helloDeploymentFor is a minimal deployment of repo on node n1.
func helloDeploymentFor(name, repo string) *api.Deployment {
	d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment}, Metadata: api.ObjectMeta{Name: name},
		Spec: api.DeploymentSpec{Source: api.Source{Repo: repo}, Nodes: []string{"n1"}, Run: api.Run{Command: "x"}}}
	d.Default()
	return d
}

func TestMain(m *testing.M) {
	// The scale benchmarks run their simulated nodes in a child process
	// of this binary.
	if os.Getenv(simnode.ChildEnv) != "" {
		os.Exit(simnode.ChildMain(os.Stdin, os.Stdout))
	}
	pgtest.Main(m)
}
