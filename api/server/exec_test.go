package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
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

// ExecTerminal echoes what is typed until "exit", answers resizes, and
// ends with exit status 3.
func (l execLoop) ExecTerminal(_ context.Context, name string, req api.ExecRequest, stdin io.Reader, out io.Writer, resize <-chan [2]int) (string, int, error) {
	l.got <- req
	fmt.Fprintf(out, "size %dx%d\r\n", req.Rows, req.Cols)
	sz := <-resize
	fmt.Fprintf(out, "resized %dx%d\r\n", sz[0], sz[1])
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		if sc.Text() == "exit" {
			return "web-1", 3, nil
		}
		fmt.Fprintf(out, "echo %s\r\n", sc.Text())
	}
	return "web-1", 0, fmt.Errorf("stdin ended")
}

// exec with tty: the request streams the keys typed while the answer
// streams the terminal's output (full duplex), then the exit status.
func TestExecTerminalFullDuplex(t *testing.T) {
	loop := execLoop{pushRecorder: &pushRecorder{}, got: make(chan api.ExecRequest, 1)}
	e := newEnv(t, func(c *server.Config) { c.Loop = loop })
	want(t, e.req("POST", "/api/v1/deployments", "application/yaml", deployment("web")), 201)
	o, err := e.st.Get(t.Context(), api.KindDeployment, "web")
	if err != nil {
		t.Fatal(err)
	}
	d := o.(*api.Deployment)
	d.Status.Nodes = []api.NodeAppStatus{{Node: "web-1", ActiveSlot: "blue", Healthy: true}}
	if _, err := e.st.UpdateStatus(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(e.ts.URL, e.token)
	if err != nil {
		t.Fatal(err)
	}
	keys, typed := io.Pipe()
	outR, outW := io.Pipe()
	resize := make(chan [2]int, 1)
	type result struct {
		end api.ExecEnd
		err error
	}
	done := make(chan result, 1)
	go func() {
		end, err := c.ExecTerminal(t.Context(), "web", api.ExecRequest{Command: []string{"sh"}, Rows: 24, Cols: 80}, keys, outW, resize)
		outW.Close()
		done <- result{end, err}
	}()
	lines := bufio.NewScanner(outR)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("output ended: %v", lines.Err())
		}
		return strings.TrimSuffix(lines.Text(), "\r")
	}
	if l := next(); l != "size 24x80" {
		t.Fatalf("first line %q", l)
	}
	resize <- [2]int{40, 120}
	if l := next(); l != "resized 40x120" {
		t.Fatalf("after a resize %q", l)
	}
	// One line at a time: each answer comes before the next key is typed.
	for _, w := range []string{"a", "b c"} {
		fmt.Fprintf(typed, "%s\n", w)
		if l := next(); l != "echo "+w {
			t.Fatalf("typed %q, got %q", w, l)
		}
	}
	fmt.Fprintf(typed, "exit\n")
	go io.Copy(io.Discard, outR)
	r := <-done
	if r.err != nil || r.end.ExitCode != 3 || r.end.Node != "web-1" {
		t.Fatalf("end %+v, %v", r.end, r.err)
	}
	if req := <-loop.got; !req.TTY || req.By == "" {
		t.Fatalf("the loop got %+v", req)
	}
}
