package server_test

import (
	"context"
	"strings"
	"testing"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/client"
	"bakery.dev/bakery/api/server"
)

// execLoop answers Exec with two lines and an exit status, recording the
// request.
type execLoop struct {
	*pushRecorder
	got chan api.ExecRequest
}

func (l execLoop) Exec(_ context.Context, name string, req api.ExecRequest, fn func(api.ExecLine)) (string, int, error) {
	l.got <- req
	fn(api.ExecLine{Node: "web-1", Stream: api.StreamStdout, Text: "out " + strings.Join(req.Command, "|")})
	fn(api.ExecLine{Node: "web-1", Stream: api.StreamStderr, Text: "err"})
	return "web-1", 7, nil
}

// POST /api/v1/deployments/{name}/exec streams the command's output and
// ends with its exit status; the loop learns who asked.
func TestExecStreamsAndPassesExitStatus(t *testing.T) {
	loop := execLoop{pushRecorder: &pushRecorder{}, got: make(chan api.ExecRequest, 1)}
	e := newEnv(t, func(c *server.Config) { c.Loop = loop })
	want(t, e.req("POST", "/api/v1/deployments", "application/yaml", deployment("web")), 201)
	// Nowhere yet: 409 before anything runs.
	r := e.req("POST", "/api/v1/deployments/web/exec", "application/json", `{"command":["true"]}`)
	want(t, r, 409)
	o, err := e.st.Get(t.Context(), api.KindDeployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	d := o.(*api.Deployment)
	d.Status.Nodes = []api.NodeAppStatus{{Node: "web-1", ActiveSlot: "blue", Healthy: true}}
	if _, err := e.st.UpdateStatus(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	want(t, e.req("POST", "/api/v1/deployments/web/exec", "application/json", `{"command":[]}`), 400)
	want(t, e.req("POST", "/api/v1/deployments/web/exec", "application/json", `{"command":["x"],"timeoutSeconds":100000}`), 400)
	want(t, e.req("POST", "/api/v1/deployments/web/exec", "application/json", `{"command":["x"],"env":{"A":"b"}}`), 400)
	want(t, e.req("POST", "/api/v1/deployments/web/exec", "application/json", `{"command":["x"],"node":"web-9"}`), 409)
	c, err := client.New(e.ts.URL, e.token)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	end, err := c.Exec(t.Context(), "web", api.ExecRequest{Command: []string{"echo", "a b"}}, func(l api.ExecLine) {
		lines = append(lines, l.Node+" "+l.Stream+" "+l.Text)
	})
	if err != nil {
		t.Fatal(err)
	}
	if end.ExitCode != 7 || end.Node != "web-1" || end.Error != "" {
		t.Fatalf("end %+v", end)
	}
	if got := strings.Join(lines, "\n"); got != "web-1 stdout out echo|a b\nweb-1 stderr err" {
		t.Fatalf("lines:\n%s", got)
	}
	req := <-loop.got
	if req.By == "" || len(req.Command) != 2 {
		t.Fatalf("the loop got %+v: want the caller named", req)
	}
}
