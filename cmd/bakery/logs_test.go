package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store/storetest"
)

// logsRollout stores deployment name with a running current rollout id.
func logsRollout(t *testing.T, e *testEnv, name, id string) {
	t.Helper()
	ctx := t.Context()
	o, err := e.store.Create(ctx, storetest.Deployment(name, "/srv/repo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateRollout(ctx, storetest.Rollout(id, name, 1, 0)); err != nil {
		t.Fatal(err)
	}
	d := o.(*api.Deployment)
	d.Status.CurrentRollout = &api.RolloutRef{ID: id, State: api.RolloutRunning}
	if _, err := e.store.UpdateStatus(ctx, d); err != nil {
		t.Fatal(err)
	}
}

func logsAppend(t *testing.T, e *testEnv, id string, from, to int) {
	t.Helper()
	var lines []api.LogLine
	for i := from; i <= to; i++ {
		node := "web-1"
		if i%2 == 0 {
			node = "web-2"
		}
		lines = append(lines, api.LogLine{Seq: int64(i), Node: node, Stream: api.StreamStdout, Time: api.Now(), Text: fmt.Sprintf("step %d done", i)})
	}
	if err := e.store.AppendLogs(t.Context(), id, lines); err != nil {
		t.Fatal(err)
	}
}

func logsFinish(t *testing.T, e *testEnv, id, state, msg string) {
	t.Helper()
	ro, err := e.store.GetRollout(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	ro.State, ro.Message, ro.FinishedAt = state, msg, api.Now()
	if err := e.store.UpdateRollout(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
}

func wantLogLines(t *testing.T, out string, from, to int) {
	t.Helper()
	var want strings.Builder
	for i := from; i <= to; i++ {
		node := "web-1"
		if i%2 == 0 {
			node = "web-2"
		}
		fmt.Fprintf(&want, "%s stdout step %d done\n", node, i)
	}
	if out != want.String() {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want.String())
	}
}

// followLogs runs 'bakery logs deployment/NAME -f' while the test writes
// the rollout's log, and returns its output and exit code.
func followLogs(t *testing.T, e *testEnv, name, id, state, msg string) (stdout, stderr string, code int) {
	t.Helper()
	logsAppend(t, e, id, 1, 5)
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(t.Context(), []string{"logs", "deployment/" + name, "-f"}, strings.NewReader(""), &out, &errOut)
	}()
	// The stored lines come first; then the command follows new ones.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "step 5 done") {
		select {
		case c := <-done:
			t.Fatalf("bakery logs -f exited %d early:\n%s\n%s", c, out.String(), errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stored lines within 10s:\n%s", out.String())
		}
	}
	for from := 6; from <= 40; from += 7 {
		logsAppend(t, e, id, from, from+6)
	}
	logsFinish(t, e, id, state, msg)
	select {
	case code = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("bakery logs -f still running 20s after the rollout ended:\n%s", out.String())
	}
	return out.String(), errOut.String(), code
}

func TestLogsFollowFailed(t *testing.T) {
	e := newTestEnv(t)
	logsRollout(t, e, "web", "web-1-aaaa")
	stdout, stderr, code := followLogs(t, e, "web", "web-1-aaaa", api.RolloutFailed, "health check failed on web-2")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	wantLogLines(t, stdout, 1, 40)
	if !strings.Contains(stderr, "rollout web-1-aaaa failed: health check failed on web-2") {
		t.Fatalf("stderr %q", stderr)
	}
}

func TestLogsFollowSucceeded(t *testing.T) {
	e := newTestEnv(t)
	logsRollout(t, e, "web", "web-1-aaaa")
	stdout, stderr, code := followLogs(t, e, "web", "web-1-aaaa", api.RolloutSucceeded, "")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, stderr)
	}
	wantLogLines(t, stdout, 1, 40)

	// Without -f: the stored lines, at once, even for a running rollout.
	logsRollout(t, e, "api", "api-1-bbbb")
	logsAppend(t, e, "api-1-bbbb", 1, 1203)
	wantLogLines(t, must(t, "", "logs", "deployment/api"), 1, 1203)
	wantLogLines(t, must(t, "", "logs", "deployment/web", "--rollout", "api-1-bbbb"), 1, 1203)
	if r := bakery(t, "", "logs", "deployment/nope", "-f"); r.code != 1 {
		t.Fatalf("unknown deployment: exit %d", r.code)
	}
}
