package main

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/auth"
	"bakery.dev/bakery/api/server"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/filestore"
)

// TestDescribeEvents adds events straight into the store and checks the
// Events table of describe: the 10 newest, newest first, none when there
// are none.
func TestDescribeEvents(t *testing.T) {
	env := newTestEnv(t)
	must(t, "", "apply", "-f", manifestDir(t))
	if out := must(t, "", "describe", "deployment", "hello"); strings.Contains(out, "Events:") {
		t.Fatalf("describe without events shows an Events section:\n%s", out)
	}

	now := time.Now()
	add := func(e *api.Event) {
		t.Helper()
		if err := env.store.AddEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		// ev-00 is 12 minutes old, ev-11 one minute.
		add(&api.Event{
			ID:       fmt.Sprintf("ev-%02d", i),
			Time:     api.NewTime(now.Add(-time.Duration(12-i) * time.Minute)),
			Type:     api.EventUnitUnhealthy,
			Severity: api.SeverityWarning,
			Object:   "Deployment/hello",
			Message:  fmt.Sprintf("message %02d", i),
		})
	}
	add(&api.Event{ID: "node-1", Time: api.NewTime(now.Add(-5 * time.Second)), Type: api.EventNodeUnreachable,
		Severity: api.SeverityError, Object: "Node/web-1", Message: "ssh: connect:\n\x1b[31mrefused"})

	out := must(t, "", "describe", "deployment", "hello")
	_, table, ok := strings.Cut(out, "\nEvents:\n")
	if !ok {
		t.Fatalf("no Events section:\n%s", out)
	}
	rows := lines(strings.TrimRight(table, "\n"))
	if len(rows) != 11 || !regexp.MustCompile(`^  AGE +TYPE +MESSAGE$`).MatchString(rows[0]) {
		t.Fatalf("events table: want a header and 10 rows, got:\n%s", table)
	}
	for j, row := range rows[1:] {
		i := 11 - j
		want := regexp.MustCompile(fmt.Sprintf(`^  \S+ +UnitUnhealthy +message %02d$`, i))
		if !want.MatchString(row) {
			t.Errorf("row %d = %q, want %v", j, row, want)
		}
	}
	if age := strings.Fields(rows[1])[0]; age != "60s" && age != "61s" {
		t.Errorf("age of the newest event = %q, want 60s", age)
	}
	if strings.Contains(out, "message 01") || strings.Contains(out, "message 00") {
		t.Errorf("describe shows more than the 10 newest events:\n%s", out)
	}
	if strings.Contains(out, "NodeUnreachable") {
		t.Errorf("describe deployment shows a node's event:\n%s", out)
	}

	out = must(t, "", "describe", "node", "web-1")
	if !regexp.MustCompile(`\nEvents:\n  AGE +TYPE +MESSAGE\n  [56]s +NodeUnreachable +ssh: connect: \x{FFFD}\[31mrefused\n$`).MatchString(out) {
		t.Errorf("describe node: events table wrong or not last:\n%s", out)
	}
}

// A server whose store keeps no events answers 503: describe leaves the
// section out and says nothing.
func TestDescribeStoreWithoutEvents(t *testing.T) {
	isolate(t)
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
	if err := st.AddEvent(t.Context(), &api.Event{ID: "x", Time: api.Now(), Type: api.EventDiskLow, Object: "Node/web-1", Message: "hidden"}); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: struct{ store.Store }{st}, Logger: log, Version: "v0.0.1-test", StoreKind: "file", AllowLocalNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Setenv("BAKERY_SERVER", hs.URL)
	t.Setenv("BAKERY_TOKEN", token)

	must(t, "", "apply", "-f", manifestDir(t))
	r := bakery(t, "", "describe", "node", "web-1")
	if r.code != 0 || r.stderr != "" || strings.Contains(r.stdout, "Events") || !strings.Contains(r.stdout, "Reachable:") {
		t.Fatalf("describe on a store without events: %+v", r)
	}
}

// describe shows spec.release and its last run.
func TestDescribeRelease(t *testing.T) {
	d := &api.Deployment{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindDeployment}, Metadata: api.ObjectMeta{Name: "web"},
		Spec: api.DeploymentSpec{Source: api.Source{Repo: "r"}, Nodes: []string{"n1"}, Run: api.Run{Command: "run"},
			Release: &api.Release{Command: "./migrate"}}}
	d.Default()
	d.Status.Release = &api.ReleaseRun{Commit: "0123456789abcdef0123456789abcdef01234567", Node: "n1", Result: api.ReleaseFailed, ExitCode: 3, DurationMillis: 1500, Rollout: "web-2-abc"}
	var b strings.Builder
	describeWithLease(&b, d, time.Now(), nil)
	for _, want := range []string{"./migrate (timeout 10m0s)", "failed for commit 0123456 on n1 in 1.5s (exit 3), rollout web-2-abc"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, b.String())
		}
	}
}
