package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
)

// TestDeploymentPageProcesses: the deployment page (and its status
// fragment) lists the processes with running/wanted instances per node.
func TestDeploymentPageProcesses(t *testing.T) {
	e := newEnv(t, false)
	d := deployment("hello")
	d.Spec.Processes = []api.Process{{Name: "mailer", Command: "exec python3 mailer.py", Replicas: 2, StopTimeout: &api.Duration{Duration: 30 * time.Second}}}
	e.create(d)
	o, err := e.st.Get(t.Context(), api.KindDeployment, "hello")
	if err != nil {
		t.Fatal(err)
	}
	d = o.(*api.Deployment)
	d.Status.Nodes = []api.NodeAppStatus{{Node: "web-1", ActiveSlot: "blue", Processes: []api.ProcessStatus{{Name: "mailer", Replicas: 2, Running: 1, Revision: 3}}}}
	if _, err := e.st.UpdateStatus(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	b := e.loggedIn()
	for _, path := range []string{"/ui/deployments/hello", "/ui/deployments/hello/status"} {
		code, body, _ := b.get(path)
		if code != http.StatusOK || !strings.Contains(body, `id="processes"`) || !strings.Contains(body, "exec python3 mailer.py") ||
			!strings.Contains(body, "30s") || !strings.Contains(body, `<span class="tag">1/2</span>`) {
			t.Fatalf("%s: %d\n%s", path, code, body)
		}
	}
}
