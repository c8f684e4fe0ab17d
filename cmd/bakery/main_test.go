package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store/filestore"
	"bakery.dev/bakery/reconciler/manager"
	"bakery.dev/bakery/reconciler/nodeconn"
)

// testEnv is a real Bakery server (server.New on a file store in a
// temporary directory, served by httptest) and a CLI environment pointing
// at it through BAKERY_SERVER and BAKERY_TOKEN, with its own config
// directory.
type testEnv struct {
	url, token string
	configHome string
	store      *filestore.Store
}

// isolate gives the test its own config directory and clears the
// environment the CLI reads.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	for _, v := range []string{"BAKERY_SERVER", "BAKERY_TOKEN", "BAKERY_CONFIG", "BAKERY_DATA", "BAKERY_LISTEN", "DATABASE_URL", "BAKERY_ENCRYPTION_KEY", "BAKERY_ENCRYPTION_KEY_FILE"} {
		t.Setenv(v, "")
	}
	return home
}

// newTestEnv starts the server; with loop true it gets the reconciler's
// Manager as its Actions (controllers not started).
func newTestEnv(t *testing.T, loop ...bool) *testEnv {
	t.Helper()
	home := isolate(t)
	log := slog.New(slog.DiscardHandler)
	st, err := filestore.Open(t.TempDir(), filestore.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	token, _, err := auth.EnsureAdminToken(t.Context(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: st, Logger: log, Version: "v0.0.1-test", Commit: "feedbee", StoreKind: "file", AllowLocalNodes: true}
	if len(loop) > 0 && loop[0] {
		id, err := nodeconn.LoadOrCreateIdentity(filepath.Join(t.TempDir(), "ssh"))
		if err != nil {
			t.Fatal(err)
		}
		// The real control loop's actions, without running its controllers.
		mgr, err := manager.New(manager.Config{Store: st, Identity: id, DataDir: t.TempDir(), Logger: log, AllowLocalNodes: true})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Loop = mgr
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Setenv("BAKERY_SERVER", hs.URL)
	t.Setenv("BAKERY_TOKEN", token)
	return &testEnv{url: hs.URL, token: token, configHome: home, store: st}
}

type result struct {
	stdout, stderr string
	code           int
}

// bakery runs the CLI in-process with stdin and returns what it wrote and
// its exit code.
func bakery(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

// must runs the CLI and fails the test unless it exits 0.
func must(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := bakery(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("bakery %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const nodesYAML = `# Two nodes: one over SSH, one local.
apiVersion: bakery.dev/v1
kind: Node
metadata:
  name: web-1
  labels: {role: web}
spec:
  address: 127.0.0.1
  port: 2222
---
apiVersion: bakery.dev/v1
kind: Node
metadata:
  name: web-2
  labels: {role: web}
spec:
  local: true
`

const appYAML = `apiVersion: bakery.dev/v1
kind: Deployment
metadata:
  name: hello
  labels: {app: hello}
spec:
  source:
    repo: /srv/git/hello.git
    ref: main
  nodes: [web-1]
  build:
    test: node --test
  run:
    command: node server.js
    env:
      - {name: GREETING, value: hello}
  healthCheck:
    path: /healthz
  ingress:
    hosts: [hello.example.test]
`

// manifestDir writes the test manifests into a directory and returns it.
func manifestDir(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "nodes.yaml"), nodesYAML)
	writeFile(t, filepath.Join(dir, "apps", "hello.yaml"), appYAML)
	return dir
}

func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

func wantLines(t *testing.T, got string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range lines(got) {
		have[l] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("output lacks line %q:\n%s", w, got)
		}
	}
	if n := len(lines(got)); n != len(want) {
		t.Errorf("output has %d lines, want %d:\n%s", n, len(want), got)
	}
}

func TestApplyGetDiffCycle(t *testing.T) {
	newTestEnv(t)
	dir := manifestDir(t)

	out := must(t, "", "apply", "-f", dir)
	wantLines(t, out,
		"node.bakery.dev/web-1 created",
		"node.bakery.dev/web-2 created",
		"deployment.bakery.dev/hello created")
	out = must(t, "", "apply", "-f", dir)
	wantLines(t, out,
		"node.bakery.dev/web-1 unchanged",
		"node.bakery.dev/web-2 unchanged",
		"deployment.bakery.dev/hello unchanged")

	// get -o yaml and -o json re-apply as unchanged.
	y := must(t, "", "get", "deployments", "-o", "yaml")
	wantLines(t, must(t, y, "apply", "-f", "-"), "deployment.bakery.dev/hello unchanged")
	y = must(t, "", "get", "deployment", "hello", "-o", "yaml")
	wantLines(t, must(t, y, "apply", "-f", "-"), "deployment.bakery.dev/hello unchanged")
	j := must(t, "", "get", "nodes", "-o", "json")
	wantLines(t, must(t, j, "apply", "-f", "-"), "node.bakery.dev/web-1 unchanged", "node.bakery.dev/web-2 unchanged")
	j = must(t, "", "get", "node/web-1", "-o", "json")
	wantLines(t, must(t, j, "apply", "-f", "-"), "node.bakery.dev/web-1 unchanged")

	// No change: diff exits 0 and prints nothing.
	r := bakery(t, "", "diff", "-f", dir)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("diff without changes: exit %d, stdout %q, stderr %q; want 0 and nothing", r.code, r.stdout, r.stderr)
	}

	// Edit the spec: diff exits 1 and shows the field, changing nothing.
	writeFile(t, filepath.Join(dir, "apps", "hello.yaml"), strings.Replace(appYAML, "ref: main", "ref: v2", 1))
	r = bakery(t, "", "diff", "-f", dir)
	if r.code != 1 {
		t.Fatalf("diff with a change: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "-    ref: main") || !strings.Contains(r.stdout, "+    ref: v2") || !strings.Contains(r.stdout, "Deployment/hello") {
		t.Errorf("diff output lacks the changed ref:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "Node/") {
		t.Errorf("diff shows unchanged nodes:\n%s", r.stdout)
	}
	wantLines(t, must(t, "", "apply", "-f", dir, "--dry-run"),
		"node.bakery.dev/web-1 unchanged (dry run)",
		"node.bakery.dev/web-2 unchanged (dry run)",
		"deployment.bakery.dev/hello configured (dry run)")

	out = must(t, "", "apply", "-f", dir)
	wantLines(t, out,
		"node.bakery.dev/web-1 unchanged",
		"node.bakery.dev/web-2 unchanged",
		"deployment.bakery.dev/hello configured")
	var d struct {
		Metadata struct {
			Generation int64 `json:"generation"`
		} `json:"metadata"`
		Spec struct {
			Source struct{ Ref string } `json:"source"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(must(t, "", "get", "deploy", "hello", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	if d.Metadata.Generation != 2 || d.Spec.Source.Ref != "v2" {
		t.Errorf("after the edit: generation %d, ref %q; want 2, v2", d.Metadata.Generation, d.Spec.Source.Ref)
	}
	if r := bakery(t, "", "diff", "-f", dir); r.code != 0 {
		t.Errorf("diff after apply: exit %d, want 0:\n%s", r.code, r.stdout)
	}
}

func TestGetOutput(t *testing.T) {
	newTestEnv(t)
	must(t, "", "apply", "-f", manifestDir(t))

	tbl := lines(must(t, "", "get", "deployments"))
	if got := strings.Join(strings.Fields(tbl[0]), " "); got != "NAME READY COMMIT REVISION PINNED NODES AGE" {
		t.Errorf("deployments header %q", got)
	}
	if len(tbl) != 2 {
		t.Fatalf("deployments table:\n%s", strings.Join(tbl, "\n"))
	}
	if f := strings.Fields(tbl[1]); len(f) != 7 || f[0] != "hello" || f[1] != "0/1" || f[2] != "-" || f[3] != "-" || f[4] != "-" || f[5] != "web-1" || !strings.HasSuffix(f[6], "s") {
		t.Errorf("deployments row %q", tbl[1])
	}
	// Columns are aligned: every row's second column starts where the header's does.
	if strings.Index(tbl[0], "READY") != strings.Index(tbl[1], "0/1") {
		t.Errorf("columns not aligned:\n%s\n%s", tbl[0], tbl[1])
	}

	tbl = lines(must(t, "", "get", "deploy", "-o", "wide"))
	if got := strings.Join(strings.Fields(tbl[0]), " "); got != "NAME READY COMMIT REVISION PINNED NODES AGE RUNTIME REF HOSTS PROCESSES" {
		t.Errorf("wide deployments header %q", got)
	}
	if f := strings.Fields(tbl[1]); len(f) != 11 || f[7] != "systemd" || f[8] != "main" || f[9] != "hello.example.test" || f[10] != "-" {
		t.Errorf("wide deployments row %q", tbl[1])
	}

	tbl = lines(must(t, "", "get", "no"))
	if got := strings.Join(strings.Fields(tbl[0]), " "); got != "NAME ADDRESS REACHABLE READY LAST-HANDSHAKE DISK AGE" {
		t.Errorf("nodes header %q", got)
	}
	if len(tbl) != 3 || strings.Fields(tbl[1])[0] != "web-1" || strings.Fields(tbl[1])[1] != "127.0.0.1" || strings.Fields(tbl[1])[2] != "Unknown" ||
		strings.Fields(tbl[2])[1] != "<local>" {
		t.Errorf("nodes table:\n%s", strings.Join(tbl, "\n"))
	}
	tbl = lines(must(t, "", "get", "nodes", "-o", "wide"))
	if got := strings.Join(strings.Fields(tbl[0]), " "); got != "NAME ADDRESS REACHABLE READY LAST-HANDSHAKE DISK AGE USER PORT OS FREE" {
		t.Errorf("wide nodes header %q", got)
	}
	if f := strings.Fields(tbl[1]); len(f) != 11 || f[7] != "bakery-agent" || f[8] != "2222" {
		t.Errorf("wide nodes row %q", tbl[1])
	}

	wantLines(t, must(t, "", "get", "nodes,deployments", "-o", "name"),
		"node.bakery.dev/web-1", "node.bakery.dev/web-2", "deployment.bakery.dev/hello")
	wantLines(t, must(t, "", "get", "node/web-2", "deploy/hello", "-o", "name"),
		"node.bakery.dev/web-2", "deployment.bakery.dev/hello")
	wantLines(t, must(t, "", "get", "nodes", "-l", "role=web,!gone", "-o", "name"),
		"node.bakery.dev/web-1", "node.bakery.dev/web-2")
	r := bakery(t, "", "get", "nodes", "-l", "role=db")
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "No resources found") {
		t.Errorf("empty selection: %+v", r)
	}

	// A missing object: the others are printed, the exit code is 1.
	r = bakery(t, "", "get", "deployment", "hello", "nope", "-o", "name")
	if r.code != 1 || r.stdout != "deployment.bakery.dev/hello\n" || !strings.Contains(r.stderr, `deployments "nope" not found`) {
		t.Errorf("get with a missing name: %+v", r)
	}
	// Usage mistakes.
	for _, args := range [][]string{
		{"get"}, {"get", "pods"}, {"get", "nodes", "-o", "xml"}, {"get", "node/web-1", "web-2"}, {"get", "nodes", "web-1", "-l", "a=b"},
	} {
		r := bakery(t, "", args...)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "error: ") || !strings.Contains(r.stderr, "--help") {
			t.Errorf("bakery %v: %+v, want exit 1 with an error and a --help hint", args, r)
		}
	}
}

func TestDescribe(t *testing.T) {
	newTestEnv(t)
	must(t, "", "apply", "-f", manifestDir(t))
	out := must(t, "", "describe", "deployment", "hello")
	for _, want := range []string{
		"Name:", "hello", "Kind:", "Deployment", "Labels:", "app=hello",
		"/srv/git/hello.git @ main", "Nodes:", "web-1", "node server.js", "GREETING",
		"GET /healthz every 1s, timeout 2s, 10 retries", "hello.example.test",
		"Status:", "Commit:", "<none>", "Current rollout:", "Conditions:", "Generation:", "observed: not yet",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe deployment lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "GREETING=") || strings.Contains(out, "value") {
		t.Errorf("describe shows env values:\n%s", out)
	}
	out = must(t, "", "describe", "node/web-1")
	for _, want := range []string{"Address:", "127.0.0.1:2222", "bakery-agent", "trust on first use", "Reachable:", "Unknown"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe node lacks %q:\n%s", want, out)
		}
	}
	out = must(t, "", "describe", "nodes")
	if strings.Count(out, "Kind:") != 2 {
		t.Errorf("describe nodes: want both nodes:\n%s", out)
	}
	if r := bakery(t, "", "describe", "node", "nope"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("describe missing: %+v", r)
	}
}

// TestStatusOutput writes status as the control plane would, straight
// into the store, and checks what get and describe make of it.
func TestStatusOutput(t *testing.T) {
	e := newTestEnv(t)
	must(t, "", "apply", "-f", manifestDir(t))
	ctx := t.Context()
	now := time.Now()
	o, err := e.store.Get(ctx, api.KindDeployment, "hello")
	if err != nil {
		t.Fatal(err)
	}
	d := o.(*api.Deployment)
	d.Status = api.DeploymentStatus{
		ObservedGeneration: 1,
		Commit:             "0123456789abcdef0123456789abcdef01234567",
		Revision:           3,
		CurrentRollout:     &api.RolloutRef{ID: "r-42", State: "Running"},
		Pin:                &api.CommitPin{Commit: "0123456789abcdef0123456789abcdef01234567", Reason: api.TriggerRollback, Generation: 1, Revision: 2, SpecRestored: true},
		Conditions: []api.Condition{
			{Type: api.ConditionReady, Status: api.ConditionTrue, Reason: "Healthy", Message: "all nodes healthy", LastTransitionTime: api.NewTime(now.Add(-5 * time.Minute))},
			{Type: api.ConditionProgressing, Status: api.ConditionFalse, Reason: "Done"},
		},
		Nodes: []api.NodeAppStatus{{Node: "web-1", ActiveSlot: "green", Commit: "0123456789abcdef", Revision: 3, Port: 9001, Healthy: true, UnitState: "active",
			Certificates: []api.CertificateStatus{{Host: "hello.example.test", NotAfter: api.NewTime(now.Add(50*24*time.Hour + time.Minute)), Serial: "4BB424659C012AA1"}, {Host: "www.example.test"}}}},
	}
	if _, err := e.store.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
	o, err = e.store.Get(ctx, api.KindNode, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	n := o.(*api.Node)
	n.Status = api.NodeStatus{
		Reachable: true, LastHandshakeTime: api.NewTime(now.Add(-30 * time.Second)),
		OS: "Debian GNU/Linux 12", Kernel: "6.1.0", Tools: []string{"git", "nginx"},
		Disk:       &api.DiskUsage{BakeryBytes: 12 << 20, FilesystemBytes: 40 << 30, FreeBytes: 20 << 30},
		Conditions: []api.Condition{{Type: api.ConditionReachable, Status: api.ConditionTrue, Reason: "Connected"}},
	}
	if _, err := e.store.UpdateStatus(ctx, n); err != nil {
		t.Fatal(err)
	}

	f := strings.Fields(lines(must(t, "", "get", "deployments"))[1])
	if f[1] != "1/1" || f[2] != "0123456" || f[3] != "3" || f[4] != "rollback:2" {
		t.Errorf("deployment row %q, want READY 1/1, COMMIT 0123456, REVISION 3, PINNED rollback:2", f)
	}
	f = strings.Fields(lines(must(t, "", "get", "nodes", "-o", "wide"))[1])
	// LAST-HANDSHAKE is 30s old when the status is written; a slow run
	// (-race on a busy machine) may print it a second later.
	if f[2] != "True" || f[4] != "30s" && f[4] != "31s" || f[5] != "12MiB" || f[9] != "Debian" || f[len(f)-1] != "20GiB" {
		t.Errorf("node row %q", f)
	}
	out := must(t, "", "describe", "deploy", "hello")
	for _, want := range []string{"0123456789abcdef0123456789abcdef01234567", "r-42 (Running)", "observed: 1",
		"TYPE", "Ready", "True", "Healthy", "5m", "all nodes healthy", "Progressing",
		"NODE", "SLOT", "web-1", "green", "9001", "active",
		"Certificates:", "EXPIRES", "hello.example.test", "50d", "4BB424659C012AA1", "www.example.test", "<none>",
		"Pinned:", "revision 2, commit 0123456 (rollback)", "bakery rollout resume deployment/hello"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe deployment lacks %q:\n%s", want, out)
		}
	}
	out = must(t, "", "describe", "node", "web-1")
	for _, want := range []string{"Reachable:", "True", "Last handshake:", "Debian GNU/Linux 12 6.1.0", "git, nginx", "12MiB used by Bakery, 20GiB free of 40GiB", "Connected"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe node lacks %q:\n%s", want, out)
		}
	}
	// Status is in -o yaml, and applying it back changes nothing.
	y := must(t, "", "get", "deploy", "hello", "-o", "yaml")
	if !strings.Contains(y, "revision: 3") {
		t.Errorf("-o yaml lacks the status:\n%s", y)
	}
	wantLines(t, must(t, y, "apply", "-f", "-"), "deployment.bakery.dev/hello unchanged")
}

func TestApplyInvalid(t *testing.T) {
	newTestEnv(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	// Valid node, invalid deployment: nothing at all is applied.
	writeFile(t, bad, nodesYAML+`---
apiVersion: bakery.dev/v1
kind: Deployment
metadata: {name: web}
spec:
  source: {repo: ""}
  nodes: [web-1]
  run: {command: ./server, port: 70000}
`)
	r := bakery(t, "", "apply", "-f", bad)
	if r.code != 1 {
		t.Fatalf("apply invalid: exit %d, want 1\n%s", r.code, r.stderr)
	}
	for _, want := range []string{bad + ": Deployment/web: spec.run.port: must be 1-65534", bad + ": Deployment/web: spec.source.repo: is required"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	if r := bakery(t, "", "get", "nodes,deployments", "-o", "name"); r.stdout != "" {
		t.Errorf("objects applied from an invalid bundle:\n%s", r.stdout)
	}
	if r := bakery(t, "", "diff", "-f", bad); r.code != 2 || !strings.Contains(r.stderr, "spec.run.port") {
		t.Errorf("diff invalid: exit %d, want 2\n%s", r.code, r.stderr)
	}

	// Strict decoding: an unknown field is found before the server is asked,
	// with the file, the document and the field path.
	typo := filepath.Join(dir, "typo.yaml")
	writeFile(t, typo, strings.Replace(appYAML, "path: /healthz", "pathh: /healthz", 1))
	r = bakery(t, "", "apply", "-f", typo)
	if r.code != 1 || !strings.Contains(r.stderr, typo+": document 1 (Deployment/hello): spec.healthCheck.pathh: unknown field") {
		t.Errorf("apply with a typo: exit %d\n%s", r.code, r.stderr)
	}
	if r := bakery(t, "", "apply", "-f", filepath.Join(dir, "missing.yaml")); r.code != 1 || !strings.Contains(r.stderr, "missing.yaml") {
		t.Errorf("apply a missing file: %+v", r)
	}
	if r := bakery(t, "", "apply"); r.code != 1 || !strings.Contains(r.stderr, "-f") {
		t.Errorf("apply without -f: %+v", r)
	}
}

func TestExampleHello(t *testing.T) {
	const example = "../../examples/hello/app.yaml"
	if _, err := os.Stat(example); err != nil {
		t.Fatalf("the example the README names is missing: %v", err)
	}
	newTestEnv(t)
	wantLines(t, must(t, "", "apply", "-f", example), "node.bakery.dev/web-1 created", "deployment.bakery.dev/hello created")
	wantLines(t, must(t, "", "apply", "-f", "../../examples/"), "node.bakery.dev/web-1 unchanged", "deployment.bakery.dev/hello unchanged",
		"deployment.bakery.dev/tasks created")
}

func TestDelete(t *testing.T) {
	newTestEnv(t)
	dir := manifestDir(t)
	must(t, "", "apply", "-f", dir)
	wantLines(t, must(t, "", "delete", "deployment", "hello"), "deployment.bakery.dev/hello deleted")
	r := bakery(t, "", "delete", "deploy/hello", "node/web-1")
	if r.code != 1 || r.stdout != "node.bakery.dev/web-1 deleted\n" || !strings.Contains(r.stderr, `deployments "hello" not found`) {
		t.Errorf("delete with a missing object: %+v", r)
	}
	if out := must(t, "", "delete", "deploy", "hello", "--ignore-not-found"); out != "" {
		t.Errorf("--ignore-not-found printed %q", out)
	}
	must(t, "", "apply", "-f", dir)
	wantLines(t, must(t, "", "delete", "-f", dir),
		"node.bakery.dev/web-1 deleted", "node.bakery.dev/web-2 deleted", "deployment.bakery.dev/hello deleted")
	if out := must(t, "", "get", "nodes,deployments", "-o", "name"); out != "" {
		t.Errorf("left after delete -f:\n%s", out)
	}
	if r := bakery(t, "", "delete", "nodes"); r.code != 1 || !strings.Contains(r.stderr, "NAME") {
		t.Errorf("delete without names: %+v", r)
	}
}

func TestAuthErrors(t *testing.T) {
	e := newTestEnv(t)
	t.Setenv("BAKERY_TOKEN", "bkr_wrong")
	r := bakery(t, "", "get", "nodes")
	if r.code != 1 || !strings.Contains(r.stderr, "rejected the token") || !strings.Contains(r.stderr, "bakery login") {
		t.Errorf("wrong token: %+v", r)
	}
	r = bakery(t, "", "apply", "-f", manifestDir(t))
	if r.code != 1 || !strings.Contains(r.stderr, "rejected the token") {
		t.Errorf("apply with a wrong token: %+v", r)
	}
	// The flag beats the environment.
	must(t, "", "get", "nodes", "--token", e.token)

	t.Setenv("BAKERY_TOKEN", "")
	r = bakery(t, "", "get", "nodes")
	if r.code != 1 || !strings.Contains(r.stderr, "no API token configured") {
		t.Errorf("no token: %+v", r)
	}
	t.Setenv("BAKERY_SERVER", "")
	r = bakery(t, "", "get", "nodes")
	if r.code != 1 || !strings.Contains(r.stderr, "no Bakery server configured") || !strings.Contains(r.stderr, "bakery login") {
		t.Errorf("nothing configured: %+v", r)
	}
	// A server that is not there.
	r = bakery(t, "", "get", "nodes", "--server", "http://127.0.0.1:1", "--token", "x")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach the Bakery server") {
		t.Errorf("no server: %+v", r)
	}
}

func TestLogin(t *testing.T) {
	e := newTestEnv(t)
	t.Setenv("BAKERY_SERVER", "")
	t.Setenv("BAKERY_TOKEN", "")
	cfg := filepath.Join(e.configHome, "bakery", "config.yaml")

	r := bakery(t, "", "login", "--server", e.url, "--token", "bkr_wrong")
	if r.code != 1 || !strings.Contains(r.stderr, "rejected the token") {
		t.Errorf("login with a wrong token: %+v", r)
	}
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Errorf("config written after a failed login: %v", err)
	}

	out := must(t, "", "login", "--server", e.url, "--token", e.token)
	if !strings.Contains(out, "Logged in to "+e.url) || !strings.Contains(out, cfg) {
		t.Errorf("login printed %q", out)
	}
	fi, err := os.Stat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("config file mode %v, want 0600", perm)
	}
	b, _ := os.ReadFile(cfg)
	if !strings.Contains(string(b), "server: "+e.url) || !strings.Contains(string(b), "token: "+e.token) {
		t.Errorf("config file:\n%s", b)
	}

	// Later commands use the file.
	must(t, "", "apply", "-f", manifestDir(t))
	wantLines(t, must(t, "", "get", "deploy", "-o", "name"), "deployment.bakery.dev/hello")
	// The environment beats the file, the flag beats the environment.
	t.Setenv("BAKERY_TOKEN", "bkr_wrong")
	if r := bakery(t, "", "get", "nodes"); r.code != 1 {
		t.Errorf("BAKERY_TOKEN did not override the file: %+v", r)
	}
	must(t, "", "get", "nodes", "--token", e.token)
	t.Setenv("BAKERY_TOKEN", "")

	// --token-stdin, and --config naming another file.
	other := filepath.Join(t.TempDir(), "other.yaml")
	must(t, e.token+"\n", "login", "--server", e.url, "--token-stdin", "--config", other)
	if _, err := os.Stat(other); err != nil {
		t.Errorf("--config: %v", err)
	}
	t.Setenv("BAKERY_CONFIG", other)
	must(t, "", "get", "nodes")
}

func TestVersion(t *testing.T) {
	newTestEnv(t)
	var v versionInfo
	if err := json.Unmarshal([]byte(must(t, "", "version", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Client.Version != version || v.Server == nil || v.Server.Version != "v0.0.1-test" || v.Server.Store != "file" {
		t.Errorf("version -o json: %+v", v)
	}
	out := must(t, "", "version")
	if !strings.Contains(out, "Client Version: "+version) || !strings.Contains(out, "Server Version: v0.0.1-test") {
		t.Errorf("version: %q", out)
	}
	// Without a server, only the client's version; not an error.
	t.Setenv("BAKERY_SERVER", "")
	r := bakery(t, "", "version")
	if r.code != 0 || !strings.Contains(r.stdout, "Client Version") || strings.Contains(r.stdout, "Server Version") {
		t.Errorf("version without a server: %+v", r)
	}
	if out := must(t, "", "version", "--client", "-o", "yaml"); !strings.Contains(out, "clientVersion:") || strings.Contains(out, "serverVersion") {
		t.Errorf("version --client -o yaml: %q", out)
	}
}

func TestHelpAndCompletion(t *testing.T) {
	isolate(t)
	out := must(t, "", "--help")
	for _, want := range []string{"apply", "diff", "get", "describe", "delete", "server", "login", "version", "completion", "Exit codes", "BAKERY_SERVER"} {
		if !strings.Contains(out, want) {
			t.Errorf("bakery --help lacks %q", want)
		}
	}
	for _, cmd := range []string{"apply", "diff", "get", "describe", "delete", "server", "login", "version"} {
		out := must(t, "", cmd, "--help")
		if !strings.Contains(out, "Examples:") {
			t.Errorf("bakery %s --help has no examples", cmd)
		}
	}
	// Commands of the server host do not offer the client's flags.
	for _, cmd := range [][]string{{"server", "--help"}, {"admin", "create", "--help"}} {
		out := must(t, "", cmd...)
		if strings.Contains(out, "--token") || strings.Contains(out, "--request-timeout") || strings.Contains(out, "Global Flags") {
			t.Errorf("bakery %v lists the client flags:\n%s", cmd, out)
		}
	}
	if out := must(t, "", "get", "--help"); !strings.Contains(out, "--token") {
		t.Errorf("get --help lacks the client flags")
	}
	if out := must(t, "", "diff", "--help"); !strings.Contains(out, "1  differences found") {
		t.Errorf("diff --help does not document its exit codes")
	}
	if out := must(t, "", "completion", "bash"); !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash: %.200s", out)
	}
	if r := bakery(t, "", "aply"); r.code != 1 || !strings.Contains(r.stderr, "did you mean apply?") {
		t.Errorf("unknown command: %+v", r)
	}
	if r := bakery(t, "", "diff"); r.code != 2 || !strings.Contains(r.stderr, "-f") {
		t.Errorf("diff without -f: %+v, want exit 2", r)
	}
	out = must(t, "", "__complete", "get", "")
	if !strings.Contains(out, "nodes") || !strings.Contains(out, "deployments") {
		t.Errorf("completion of get: %q", out)
	}
}

func TestCompleteNames(t *testing.T) {
	newTestEnv(t)
	must(t, "", "apply", "-f", manifestDir(t))
	out := must(t, "", "__complete", "describe", "deployment", "")
	if !strings.Contains(out, "hello") {
		t.Errorf("completion of deployment names: %q", out)
	}
	out = must(t, "", "__complete", "get", "node/")
	if !strings.Contains(out, "node/web-1") || !strings.Contains(out, "node/web-2") {
		t.Errorf("completion of node/: %q", out)
	}
}
