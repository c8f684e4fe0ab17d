package filestore

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

func TestRollouts(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, dir)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id, dep string, rev int64, at time.Duration) *api.Rollout {
		return &api.Rollout{ID: id, Deployment: dep, Revision: rev, Trigger: api.TriggerApply, State: api.RolloutPending,
			CreatedAt: api.NewTime(t0.Add(at))}
	}
	for _, r := range []*api.Rollout{mk("r1", "web", 1, 0), mk("r2", "web", 2, time.Minute), mk("r3", "web", 2, 2*time.Minute), mk("x1", "other", 1, 0)} {
		if err := s.CreateRollout(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRollout(ctx, mk("r1", "web", 9, 0)); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("duplicate id: %v", err)
	}
	for _, id := range []string{"../x", "", ".hidden", "a/b", ".."} {
		if err := s.CreateRollout(ctx, mk(id, "web", 1, 0)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("create rollout %q: %v", id, err)
		}
	}
	if _, err := s.GetRollout(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	r2, err := s.GetRollout(ctx, "r2")
	if err != nil {
		t.Fatal(err)
	}
	r2.State = api.RolloutSucceeded
	r2.Nodes = []api.RolloutNode{{Node: "n1", State: "done", Steps: []api.RolloutStep{{Name: "build", Result: "succeeded"}}}}
	if err := s.UpdateRollout(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRollout(ctx, mk("nope", "web", 1, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	ids := func(rs []*api.Rollout) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	l, err := s.ListRollouts(ctx, "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"r3", "r2", "r1"}, ids(l)); diff != "" {
		t.Fatalf("list (-want +got):\n%s", diff)
	}
	if l, _ := s.ListRollouts(ctx, "web", 2); len(l) != 2 {
		t.Fatalf("limit 2: %v", ids(l))
	}

	// Logs.
	line := func(seq int64) api.LogLine {
		return api.LogLine{Seq: seq, Node: "n1", Stream: api.StreamStdout, Time: api.NewTime(t0), Text: fmt.Sprintf("line %d", seq)}
	}
	if err := s.AppendLogs(ctx, "r2", []api.LogLine{line(1), line(2)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, "r2", []api.LogLine{line(3)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, "r2", []api.LogLine{line(4), line(3)}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("out-of-order seq: %v", err)
	}
	if err := s.AppendLogs(ctx, "nope", []api.LogLine{line(1)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("logs of a missing rollout: %v", err)
	}
	got, err := s.Logs(ctx, "r2", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]api.LogLine{line(2), line(3)}, got); diff != "" {
		t.Fatalf("logs after 1 (-want +got):\n%s", diff)
	}
	if got, _ := s.Logs(ctx, "r2", 0, 1); len(got) != 1 || got[0].Seq != 1 {
		t.Fatalf("logs limit 1: %+v", got)
	}
	if got, err := s.Logs(ctx, "r1", 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty log: %+v %v", got, err)
	}
	before, _ := s.ListRollouts(ctx, "web", 0)
	s.Close()

	// A crash in the middle of an append leaves a torn line.
	f, err := os.OpenFile(s.logPath("r2"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"stream":"std`)
	f.Close()

	s = open(t, dir)
	after, _ := s.ListRollouts(ctx, "web", 0)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Fatalf("rollouts after reopen (-before +after):\n%s", diff)
	}
	if got, _ := s.Logs(ctx, "r2", 0, 0); len(got) != 3 {
		t.Fatalf("a torn line must not be read: %+v", got)
	}
	if err := s.AppendLogs(ctx, "r2", []api.LogLine{line(3)}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("seq must continue after reopen: %v", err)
	}
	if err := s.AppendLogs(ctx, "r2", []api.LogLine{line(4)}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Logs(ctx, "r2", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]api.LogLine{line(1), line(2), line(3), line(4)}, got); diff != "" {
		t.Fatalf("logs after repair (-want +got):\n%s", diff)
	}
}

func TestRolloutCorruptAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.CreateRollout(t.Context(), &api.Rollout{ID: "r1", Deployment: "web"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for name, data := range map[string]string{
		"r1.json": `{"id": "r1", "deployment": "web"`,
		"r2.json": `{"id": "other", "deployment": "web"}`,
	} {
		path := s.dir + "/rollouts/" + name
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, WithLogger(testLogger(t)))
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: open: err = %v, want ErrCorrupt naming the file", name, err)
		}
		os.Remove(path)
	}
}
