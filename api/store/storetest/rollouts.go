package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// RunRollouts runs the conformance suite for store.Rollouts. newStore must
// return a new, empty store that implements store.Rollouts. It is not part
// of Run: a store that keeps rollouts calls it from its own test, next to
// Run:
//
//	func TestRolloutConformance(t *testing.T) { storetest.RunRollouts(t, newStore) }
//
// Beyond what the store.Rollouts comments say, the suite pins down these
// rules (every implementation must follow them, so that callers can rely
// on them whichever store they run on):
//
//   - IDs: every method first checks the rollout ID with
//     store.CheckRolloutID (ErrInvalid, nothing stored). CreateRollout
//     refuses a nil rollout or a Deployment that is not a DNS-1123 label,
//     and ListRollouts a deployment name that is not one (ErrInvalid).
//   - Records are copies both ways: changing a rollout after storing it, or
//     one that was returned, changes nothing stored. UpdateRollout replaces
//     the whole record, including Revision and CreatedAt (which ListRollouts
//     then orders by). Times come back in UTC, truncated to seconds (what
//     api.Time holds in JSON); empty slices may come back nil.
//   - Spec: GetRollout returns the Spec stored (a deep copy, defaults
//     and all); ListRollouts leaves every Spec out (nil); UpdateRollout
//     with a nil Spec keeps the stored one (a record read from
//     ListRollouts can be updated without losing it), with a Spec
//     replaces it.
//   - Missing: GetRollout and UpdateRollout of an unknown ID, AppendLogs
//     (with at least one line) to and Logs of an unknown rollout return
//     ErrNotFound; Update and AppendLogs then store nothing.
//   - ListRollouts orders by Revision (highest first), then CreatedAt
//     compared in whole seconds (latest first; a nil CreatedAt is the
//     oldest), then ID (descending, byte-wise). An unknown deployment has
//     no rollouts (empty, no error). limit <= 0 means all.
//   - AppendLogs: the Seq values of a batch must be > 0, strictly
//     increasing, and above every Seq stored for that rollout; gaps are
//     allowed. Otherwise the call fails with ErrInvalid and appends nothing
//     of the batch. An empty batch is a no-op. Line content is never a
//     reason to refuse a batch: Node, Stream and Text are kept exactly when
//     they are valid UTF-8 without NUL, else as store.ValidText returns
//     them. The same holds for the strings of a rollout record
//     (store.ReplaceJSONNul does it for a record marshalled with
//     encoding/json). A nil Time stays nil.
//   - Logs(id, after, limit) returns the lines with Seq > after in Seq
//     order, at most limit of them (limit <= 0 means all). Past the last
//     line it returns no lines and no error.
//   - DeleteRollout removes the record and its whole log: afterwards
//     GetRollout, Logs, AppendLogs, UpdateRollout and a second
//     DeleteRollout of that ID return ErrNotFound, and ListRollouts leaves
//     it out. Every other rollout and log is untouched. A deleted ID may be
//     created again; its log then starts empty (Seq from 1 again).
//   - The store does not cascade: deleting the Deployment object leaves its
//     rollouts and their logs readable.
//   - AppendLogs may be called concurrently for different rollouts; each
//     keeps its own order. (Per rollout, the caller appends from one
//     goroutine.)
func RunRollouts(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, r store.Rollouts)
	}{
		{"CreateGet", testRolloutCreateGet},
		{"Times", testRolloutTimes},
		{"NotFound", testRolloutNotFound},
		{"Update", testRolloutUpdate},
		{"Spec", testRolloutSpec},
		{"List", testRolloutList},
		{"InvalidIDs", testRolloutInvalidIDs},
		{"LogsPaging", testLogsPaging},
		{"LogsContent", testLogsContent},
		{"LogsSeqRules", testLogsSeqRules},
		{"ConcurrentAppends", testLogsConcurrent},
		{"DeploymentDeleted", testRolloutDeploymentDeleted},
		{"Delete", testRolloutDelete},
	}
	if !t.Run("ImplementsRollouts", func(t *testing.T) {
		if s := newStore(t); !implementsRollouts(s) {
			t.Fatalf("%T does not implement store.Rollouts (CreateRollout, UpdateRollout, GetRollout, ListRollouts, AppendLogs, Logs, DeleteRollout)", s)
		}
	}) {
		return
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			r, ok := s.(store.Rollouts)
			if !ok {
				t.Fatalf("%T does not implement store.Rollouts", s)
			}
			tc.fn(t, s, r)
		})
	}
}

func implementsRollouts(s store.Store) bool {
	_, ok := s.(store.Rollouts)
	return ok
}

// Rollout returns a rollout record for tests: id, deployment and revision
// as given, created at the given second of 2026-01-02 10:00 UTC, with two
// nodes and a few steps.
func Rollout(id, deployment string, revision int64, createdSec int) *api.Rollout {
	at := func(sec int) *api.Time {
		return api.NewTime(time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second))
	}
	return &api.Rollout{
		ID:          id,
		Deployment:  deployment,
		Revision:    revision,
		Trigger:     api.TriggerApply,
		Commit:      "0123456789abcdef0123456789abcdef01234567",
		Generation:  revision + 1,
		TriggeredBy: "controller",
		State:       api.RolloutRunning,
		CreatedAt:   at(createdSec),
		Nodes: []api.RolloutNode{
			{Node: "n1", State: api.RolloutSucceeded, Steps: []api.RolloutStep{
				{Name: "fetch", Start: at(createdSec + 1), End: at(createdSec + 2), Result: api.RolloutSucceeded},
				{Name: "build", Start: at(createdSec + 2), End: at(createdSec + 30), Result: api.RolloutSucceeded, Message: "built"},
			}},
			{Node: "n2", State: api.RolloutRunning, Steps: []api.RolloutStep{
				{Name: "fetch", Start: at(createdSec + 1), End: at(createdSec + 3), Result: api.RolloutFailed, ExitCode: 128, Message: "fatal: could not read"},
				{Name: "build", Start: at(createdSec + 4)},
			}},
		},
	}
}

// rolloutOpts compares rollouts as the store must return them: empty and
// nil slices are the same.
var rolloutOpts = cmpopts.EquateEmpty()

func mustCreateRollout(t *testing.T, r store.Rollouts, ro *api.Rollout) {
	t.Helper()
	if err := r.CreateRollout(t.Context(), ro); err != nil {
		t.Fatalf("create rollout %s: %v", ro.ID, err)
	}
}

func mustGetRollout(t *testing.T, r store.Rollouts, id string) *api.Rollout {
	t.Helper()
	got, err := r.GetRollout(t.Context(), id)
	if err != nil {
		t.Fatalf("get rollout %s: %v", id, err)
	}
	return got
}

func copyRollout(ro *api.Rollout) *api.Rollout {
	c := *ro
	c.Nodes = nil
	for _, n := range ro.Nodes {
		n.Steps = append([]api.RolloutStep(nil), n.Steps...)
		c.Nodes = append(c.Nodes, n)
	}
	return &c
}

func testRolloutCreateGet(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	in := Rollout("web-1-1a2b3c4d", "web", 1, 0)
	in.Message = "rolling out revision 1 (commit 0123456)"
	in.FinishedAt = api.NewTime(time.Date(2026, 1, 2, 10, 5, 0, 0, time.UTC))
	want := copyRollout(in)
	mustCreateRollout(t, r, in)

	got := mustGetRollout(t, r, in.ID)
	if diff := cmp.Diff(want, got, rolloutOpts); diff != "" {
		t.Fatalf("get differs from what was created (-want +got):\n%s", diff)
	}
	// Copies both ways: the caller's rollout and the returned one are not
	// the store's.
	in.State = api.RolloutFailed
	in.Nodes[0].Steps[0].Name = "changed-input"
	got.Nodes[1].Steps[1].Name = "changed-output"
	got.Message = "changed"
	if diff := cmp.Diff(want, mustGetRollout(t, r, in.ID), rolloutOpts); diff != "" {
		t.Fatalf("store aliased a caller's rollout (-want +got):\n%s", diff)
	}

	// A minimal record (no nodes, no times) round-trips too.
	bare := &api.Rollout{ID: "web-2-00000000", Deployment: "web", Revision: 2, Trigger: api.TriggerRedeploy, State: api.RolloutPending}
	mustCreateRollout(t, r, copyRollout(bare))
	if diff := cmp.Diff(bare, mustGetRollout(t, r, bare.ID), rolloutOpts); diff != "" {
		t.Fatalf("bare rollout (-want +got):\n%s", diff)
	}

	// A taken ID: ErrAlreadyExists, the stored record unchanged.
	dup := Rollout(in.ID, "web", 7, 99)
	if err := r.CreateRollout(ctx, dup); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("create with a taken id: err = %v, want ErrAlreadyExists", err)
	}
	if diff := cmp.Diff(want, mustGetRollout(t, r, in.ID), rolloutOpts); diff != "" {
		t.Fatalf("a refused create changed the stored rollout (-want +got):\n%s", diff)
	}
	// Same ID for another deployment: still taken (IDs are global).
	if err := r.CreateRollout(ctx, Rollout(in.ID, "api", 1, 0)); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("create with a taken id for another deployment: err = %v, want ErrAlreadyExists", err)
	}

	// Strings that are not valid UTF-8 or hold NUL are stored as
	// store.ValidText returns them, not refused.
	odd := Rollout("web-3-0dd0dd00", "web", 3, 0)
	odd.Message = "exit status 1: \xff\xfeboom\x00 ünïcödé \xe2\x82"
	odd.Nodes[1].Steps[0].Message = "stderr: \x00\x01"
	odd.Nodes[0].Steps[0].Message = `kept as is: a literal \u0000, \\u0000 and \\\u0000`
	wantOdd := copyRollout(odd)
	wantOdd.Message = store.ValidText(odd.Message)
	wantOdd.Nodes[1].Steps[0].Message = store.ValidText(odd.Nodes[1].Steps[0].Message)
	if wantOdd.Message != "exit status 1: \ufffd\ufffdboom\ufffd ünïcödé \ufffd\ufffd" {
		t.Fatalf("store.ValidText = %q", wantOdd.Message) // the rule itself
	}
	mustCreateRollout(t, r, odd)
	if diff := cmp.Diff(wantOdd, mustGetRollout(t, r, odd.ID), rolloutOpts); diff != "" {
		t.Fatalf("record strings that are not valid UTF-8 (-want +got):\n%s", diff)
	}
}

// Times are kept as api.Time keeps them in JSON: UTC, whole seconds.
func testRolloutTimes(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	precise := time.Date(2026, 3, 4, 15, 16, 17, 987654321, zone)
	in := Rollout("web-1-71e50000", "web", 1, 0)
	in.CreatedAt = &api.Time{Time: precise}
	in.FinishedAt = &api.Time{Time: precise.Add(90 * time.Second)}
	in.Nodes[0].Steps[0].Start = &api.Time{Time: precise.Add(time.Second)}
	mustCreateRollout(t, r, in)
	got := mustGetRollout(t, r, in.ID)
	for _, c := range []struct {
		what      string
		got, want *api.Time
	}{
		{"createdAt", got.CreatedAt, api.NewTime(precise)},
		{"finishedAt", got.FinishedAt, api.NewTime(precise.Add(90 * time.Second))},
		{"nodes[0].steps[0].start", got.Nodes[0].Steps[0].Start, api.NewTime(precise.Add(time.Second))},
	} {
		if c.got == nil || !c.got.Equal(c.want.Time) || c.got.Location() != time.UTC || c.got.Nanosecond() != 0 {
			t.Errorf("%s = %v, want %v (UTC, whole seconds)", c.what, c.got, c.want)
		}
	}

	if err := r.AppendLogs(ctx, in.ID, []api.LogLine{
		{Seq: 1, Node: "n1", Stream: api.StreamStdout, Time: &api.Time{Time: precise}, Text: "precise"},
		{Seq: 2, Node: "n1", Stream: api.StreamBakery, Time: nil, Text: "no time"},
	}); err != nil {
		t.Fatal(err)
	}
	lines, err := r.Logs(ctx, in.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.LogLine{
		{Seq: 1, Node: "n1", Stream: api.StreamStdout, Time: api.NewTime(precise), Text: "precise"},
		{Seq: 2, Node: "n1", Stream: api.StreamBakery, Time: nil, Text: "no time"},
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Fatalf("log times (-want +got):\n%s", diff)
	}
	if lines[0].Time.Location() != time.UTC {
		t.Fatalf("log line time in %v, want UTC", lines[0].Time.Location())
	}
}

func testRolloutNotFound(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	const id = "web-1-deadbeef"
	if _, err := r.GetRollout(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get missing: err = %v, want ErrNotFound", err)
	}
	if err := r.UpdateRollout(ctx, Rollout(id, "web", 1, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update missing: err = %v, want ErrNotFound", err)
	}
	if _, err := r.GetRollout(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an update of a missing rollout created it: err = %v", err)
	}
	line := []api.LogLine{{Seq: 1, Stream: api.StreamBakery, Time: api.Now(), Text: "x"}}
	if err := r.AppendLogs(ctx, id, line); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("append logs to a missing rollout: err = %v, want ErrNotFound", err)
	}
	if _, err := r.Logs(ctx, id, 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("logs of a missing rollout: err = %v, want ErrNotFound", err)
	}
	list, err := r.ListRollouts(ctx, "web", 0)
	if err != nil || len(list) != 0 {
		t.Fatalf("list after failed writes: %d rollouts, %v; want none", len(list), err)
	}
	// Lines sent to a rollout before it existed are not kept.
	mustCreateRollout(t, r, Rollout(id, "web", 1, 0))
	lines, err := r.Logs(ctx, id, 0, 0)
	if err != nil || len(lines) != 0 {
		t.Fatalf("logs of a new rollout: %v, %v; want none", lines, err)
	}
}

func testRolloutUpdate(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	ro := Rollout("web-2-aaaa0000", "web", 2, 0)
	mustCreateRollout(t, r, ro)
	other := Rollout("web-2-bbbb0000", "web", 2, 10)
	mustCreateRollout(t, r, other)

	// What the reconciler does: finish steps and the rollout.
	upd := copyRollout(ro)
	upd.State = api.RolloutFailed
	upd.Message = "node n2: build failed"
	upd.FinishedAt = api.NewTime(time.Date(2026, 1, 2, 10, 3, 0, 0, time.UTC))
	upd.Nodes[1].State = api.RolloutFailed
	upd.Nodes[1].Steps[1].End = upd.FinishedAt
	upd.Nodes[1].Steps[1].Result = api.RolloutFailed
	upd.Nodes[1].Steps[1].ExitCode = 2
	upd.Nodes = append(upd.Nodes, api.RolloutNode{Node: "n3", State: api.RolloutCancelled})
	if err := r.UpdateRollout(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(upd, mustGetRollout(t, r, ro.ID), rolloutOpts); diff != "" {
		t.Fatalf("after update (-want +got):\n%s", diff)
	}

	// Replace means replace: fields left empty are gone.
	bare := &api.Rollout{ID: ro.ID, Deployment: "web", Revision: 2, Trigger: api.TriggerApply, State: api.RolloutSucceeded}
	if err := r.UpdateRollout(ctx, copyRollout(bare)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bare, mustGetRollout(t, r, ro.ID), rolloutOpts); diff != "" {
		t.Fatalf("update to a bare record (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(other, mustGetRollout(t, r, other.ID), rolloutOpts); diff != "" {
		t.Fatalf("updating one rollout changed another (-want +got):\n%s", diff)
	}

	// Revision and CreatedAt are part of the record; the list order
	// follows them. Both start at revision 2; other is newer.
	if got := listIDs(t, r, "web", 0); !cmp.Equal(got, []string{other.ID, ro.ID}) {
		t.Fatalf("list = %v, want %v", got, []string{other.ID, ro.ID})
	}
	bare.Revision = 3
	if err := r.UpdateRollout(ctx, copyRollout(bare)); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, r, "web", 0); !cmp.Equal(got, []string{ro.ID, other.ID}) {
		t.Fatalf("list after raising %s to revision 3 = %v, want %v", ro.ID, got, []string{ro.ID, other.ID})
	}
	bare.Revision = 2
	bare.CreatedAt = api.NewTime(time.Date(2026, 1, 2, 11, 0, 0, 0, time.UTC))
	if err := r.UpdateRollout(ctx, copyRollout(bare)); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, r, "web", 0); !cmp.Equal(got, []string{ro.ID, other.ID}) {
		t.Fatalf("list after making %s the latest created = %v, want %v", ro.ID, got, []string{ro.ID, other.ID})
	}
	if diff := cmp.Diff(bare, mustGetRollout(t, r, ro.ID), rolloutOpts); diff != "" {
		t.Fatalf("after update (-want +got):\n%s", diff)
	}

	// An update keeps the rollout's log.
	if err := r.AppendLogs(ctx, ro.ID, []api.LogLine{{Seq: 1, Stream: api.StreamBakery, Text: "kept"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateRollout(ctx, copyRollout(bare)); err != nil {
		t.Fatal(err)
	}
	if lines, err := r.Logs(ctx, ro.ID, 0, 0); err != nil || len(lines) != 1 || lines[0].Text != "kept" {
		t.Fatalf("logs after an update: %v, %v; want the one line", lines, err)
	}
}

func listIDs(t *testing.T, r store.Rollouts, deployment string, limit int) []string {
	t.Helper()
	list, err := r.ListRollouts(t.Context(), deployment, limit)
	if err != nil {
		t.Fatalf("list rollouts of %q (limit %d): %v", deployment, limit, err)
	}
	ids := []string{}
	for _, ro := range list {
		if ro.Deployment != deployment {
			t.Errorf("list of %q returned %s of deployment %q", deployment, ro.ID, ro.Deployment)
		}
		ids = append(ids, ro.ID)
	}
	return ids
}

func testRolloutList(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	// Created in an order that is none of the expected ones.
	web := []*api.Rollout{
		Rollout("web-2-cccc0000", "web", 2, 50),
		Rollout("web-1-aaaa0000", "web", 1, 0),
		Rollout("web-3-aaaa0000", "web", 3, 100),
		Rollout("web-2-aaaa0000", "web", 2, 60),  // latest of revision 2
		Rollout("web-2-dddd0000", "web", 2, 40),  // same second as web-2-bbbb0000 …
		Rollout("web-2-bbbb0000", "web", 2, 40),  // … so the higher id comes first
		Rollout("web-2-eeee0000", "web", 2, 0),   // CreatedAt set to nil below: oldest of revision 2
		Rollout("web-1-bbbb0000", "web", 1, 900), // newer, but an older revision
	}
	web[6].CreatedAt = nil
	// Sub-second parts do not count: both are at second 70 of revision 4,
	// so the ID decides, even though web-4-aaaa0000 is 0.8s later.
	web = append(web, Rollout("web-4-bbbb0000", "web", 4, 70), Rollout("web-4-aaaa0000", "web", 4, 70))
	web[len(web)-2].CreatedAt = &api.Time{Time: web[len(web)-2].CreatedAt.Add(100 * time.Millisecond)}
	web[len(web)-1].CreatedAt = &api.Time{Time: web[len(web)-1].CreatedAt.Add(900 * time.Millisecond)}
	for _, ro := range web {
		mustCreateRollout(t, r, ro)
	}
	// Another deployment, whose name is a prefix of web's rollout IDs'.
	mustCreateRollout(t, r, Rollout("we-9-aaaa0000", "we", 9, 999))
	mustCreateRollout(t, r, Rollout("api-1-aaaa0000", "api", 1, 5))

	want := []string{
		"web-4-bbbb0000", "web-4-aaaa0000",
		"web-3-aaaa0000",
		"web-2-aaaa0000", "web-2-cccc0000", "web-2-dddd0000", "web-2-bbbb0000", "web-2-eeee0000",
		"web-1-bbbb0000", "web-1-aaaa0000",
	}
	for _, limit := range []int{0, -1, len(want), len(want) + 5} {
		if diff := cmp.Diff(want, listIDs(t, r, "web", limit)); diff != "" {
			t.Errorf("list web, limit %d (-want +got):\n%s", limit, diff)
		}
	}
	for _, limit := range []int{1, 3, 7} {
		if diff := cmp.Diff(want[:limit], listIDs(t, r, "web", limit)); diff != "" {
			t.Errorf("list web, limit %d (-want +got):\n%s", limit, diff)
		}
	}
	if diff := cmp.Diff([]string{"api-1-aaaa0000"}, listIDs(t, r, "api", 0)); diff != "" {
		t.Errorf("list api (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"we-9-aaaa0000"}, listIDs(t, r, "we", 0)); diff != "" {
		t.Errorf("list we (-want +got):\n%s", diff)
	}
	if got := listIDs(t, r, "missing", 0); len(got) != 0 {
		t.Errorf("list of a deployment without rollouts = %v, want none", got)
	}

	// Listed records are whole and are copies.
	list, err := r.ListRollouts(ctx, "web", 1)
	if err != nil {
		t.Fatal(err)
	}
	wantFirst := copyRollout(web[len(web)-2])
	wantFirst.CreatedAt = api.NewTime(wantFirst.CreatedAt.Time)
	if diff := cmp.Diff(wantFirst, list[0], rolloutOpts); diff != "" {
		t.Errorf("listed record (-want +got):\n%s", diff)
	}
	list[0].Nodes[0].State = "changed"
	if got := mustGetRollout(t, r, list[0].ID); got.Nodes[0].State != api.RolloutSucceeded {
		t.Errorf("store returned an alias of its own data from ListRollouts")
	}

	for _, name := range []string{"", "Web", "a/b", "../web", "web-", strings.Repeat("a", 64)} {
		if _, err := r.ListRollouts(ctx, name, 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("list rollouts of deployment %q: err = %v, want ErrInvalid", name, err)
		}
	}
}

func testRolloutInvalidIDs(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	long := strings.Repeat("a", store.MaxRolloutIDLen)
	for _, id := range []string{
		"", "/", "..", "../etc", "a/b", "web/../x", "web-1-..", "a..b", "a.b", ".hidden",
		"Web-1-abcd", "web_1", "web 1", "-web", "web-", "wéb", "web\x00", long + "b",
	} {
		if err := store.CheckRolloutID(id); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CheckRolloutID(%q) = %v, want ErrInvalid", id, err)
		}
		if err := r.CreateRollout(ctx, Rollout(id, "web", 1, 0)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("create rollout %q: err = %v, want ErrInvalid", id, err)
		}
		if err := r.UpdateRollout(ctx, Rollout(id, "web", 1, 0)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("update rollout %q: err = %v, want ErrInvalid", id, err)
		}
		if _, err := r.GetRollout(ctx, id); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("get rollout %q: err = %v, want ErrInvalid", id, err)
		}
		if err := r.AppendLogs(ctx, id, []api.LogLine{{Seq: 1, Stream: api.StreamBakery, Text: "x"}}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("append logs to rollout %q: err = %v, want ErrInvalid", id, err)
		}
		if _, err := r.Logs(ctx, id, 0, 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("logs of rollout %q: err = %v, want ErrInvalid", id, err)
		}
		if err := r.DeleteRollout(ctx, id); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("delete rollout %q: err = %v, want ErrInvalid", id, err)
		}
	}
	if err := r.CreateRollout(ctx, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("create nil rollout: err = %v, want ErrInvalid", err)
	}
	if err := r.UpdateRollout(ctx, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("update nil rollout: err = %v, want ErrInvalid", err)
	}
	for _, dep := range []string{"", "Web", "a/b", "../web"} {
		if err := r.CreateRollout(ctx, Rollout("ok-1-aaaa0000", dep, 1, 0)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("create rollout of deployment %q: err = %v, want ErrInvalid", dep, err)
		}
	}
	if got := listIDs(t, r, "web", 0); len(got) != 0 {
		t.Fatalf("invalid requests stored rollouts: %v", got)
	}
	if _, err := r.GetRollout(ctx, "ok-1-aaaa0000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a rollout with an invalid deployment was stored: err = %v", err)
	}

	// The longest valid ID and the shortest work.
	for _, id := range []string{long, "a", "0", "hello-3-1a2b3c4d"} {
		if err := store.CheckRolloutID(id); err != nil {
			t.Errorf("CheckRolloutID(%q) = %v, want nil", id, err)
		}
		mustCreateRollout(t, r, Rollout(id, "web", 1, 0))
		if err := r.AppendLogs(ctx, id, []api.LogLine{{Seq: 1, Stream: api.StreamBakery, Text: "x"}}); err != nil {
			t.Errorf("append logs to %q: %v", id, err)
		}
		if lines, err := r.Logs(ctx, id, 0, 0); err != nil || len(lines) != 1 {
			t.Errorf("logs of %q: %v, %v", id, lines, err)
		}
		mustGetRollout(t, r, id)
	}
}

// logLines returns n lines with Seq from+1 … from+n, from two nodes and
// all three streams.
func logLines(from int64, n int) []api.LogLine {
	base := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	streams := []string{api.StreamStdout, api.StreamStderr, api.StreamBakery}
	out := make([]api.LogLine, n)
	for i := range out {
		seq := from + int64(i) + 1
		out[i] = api.LogLine{
			Seq:    seq,
			Node:   fmt.Sprintf("n%d", seq%2+1),
			Stream: streams[seq%3],
			Time:   api.NewTime(base.Add(time.Duration(seq) * time.Second)),
			Text:   fmt.Sprintf("line %d: compiling package %d of 90", seq, seq%90),
		}
	}
	return out
}

func testLogsPaging(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	const id = "web-1-10650000"
	mustCreateRollout(t, r, Rollout(id, "web", 1, 0))
	if lines, err := r.Logs(ctx, id, 0, 0); err != nil || len(lines) != 0 {
		t.Fatalf("logs of a rollout without lines: %v, %v; want none, no error", lines, err)
	}
	if err := r.AppendLogs(ctx, id, nil); err != nil {
		t.Fatalf("append no lines: %v", err)
	}
	// Batches of several sizes, as the reconciler's log sink sends them
	// (up to 500 lines each).
	var all []api.LogLine
	for _, n := range []int{1, 500, 37, 2, 500, 260} {
		batch := logLines(int64(len(all)), n)
		if err := r.AppendLogs(ctx, id, batch); err != nil {
			t.Fatalf("append %d lines after %d: %v", n, len(all), err)
		}
		all = append(all, batch...)
	}
	last := int64(len(all))

	got, err := r.Logs(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all, got); diff != "" {
		t.Fatalf("all lines (-want +got):\n%s", diff)
	}
	if got, err := r.Logs(ctx, id, -5, -1); err != nil || !cmp.Equal(all, got) {
		t.Fatalf("logs after -5, limit -1: %d lines, %v; want all %d", len(got), err, len(all))
	}

	// Page through with several page sizes, as a client following the log
	// does: ask for lines after the last one seen.
	for _, limit := range []int{1, 7, 100, 500, 1000, 5000} {
		var paged []api.LogLine
		after := int64(0)
		for calls := 0; ; calls++ {
			if calls > len(all)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := r.Logs(ctx, id, after, limit)
			if err != nil {
				t.Fatalf("logs after %d, limit %d: %v", after, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("logs after %d, limit %d returned %d lines", after, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Seq
		}
		if diff := cmp.Diff(all, paged); diff != "" {
			t.Fatalf("paging with limit %d (-want +got):\n%s", limit, diff)
		}
	}
	// A window in the middle.
	if diff := cmp.Diff(all[500:510], mustLogs(t, r, id, 500, 10)); diff != "" {
		t.Fatalf("logs after 500, limit 10 (-want +got):\n%s", diff)
	}
	// At and past the end: no lines, no error.
	for _, after := range []int64{last, last + 1, last + 1000} {
		if got := mustLogs(t, r, id, after, 10); len(got) != 0 {
			t.Fatalf("logs after %d (the last is %d): %d lines, want none", after, last, len(got))
		}
	}
	if got := mustLogs(t, r, id, last-1, 10); len(got) != 1 || got[0].Seq != last {
		t.Fatalf("logs after %d: %v, want the last line", last-1, got)
	}
	// Appending continues where the log ends.
	more := logLines(last, 3)
	if err := r.AppendLogs(ctx, id, more); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(more, mustLogs(t, r, id, last, 0)); diff != "" {
		t.Fatalf("lines appended after reading (-want +got):\n%s", diff)
	}
}

func mustLogs(t *testing.T, r store.Rollouts, id string, after int64, limit int) []api.LogLine {
	t.Helper()
	lines, err := r.Logs(t.Context(), id, after, limit)
	if err != nil {
		t.Fatalf("logs of %s after %d, limit %d: %v", id, after, limit, err)
	}
	return lines
}

func testLogsContent(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	const id = "web-1-c0e7e700"
	mustCreateRollout(t, r, Rollout(id, "web", 1, 0))
	at := api.NewTime(time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC))
	// 64 KiB, the longest line sshexec delivers, with multi-byte runes.
	big := strings.Repeat("ab€d", 64<<10/6) // "ab€d" is 6 bytes
	big += strings.Repeat("x", 64<<10-len(big))
	in := []api.LogLine{
		{Seq: 1, Node: "n1", Stream: api.StreamStdout, Time: at, Text: "plain"},
		{Seq: 2, Node: "n1", Stream: api.StreamStdout, Time: at, Text: ""},
		{Seq: 3, Node: "n2", Stream: api.StreamStderr, Time: at, Text: "ünïcödé ✓ 日本語 🍞 \u2028 \\u0000 'quotes' \"double\" \\ back\tslash"},
		{Seq: 4, Node: "", Stream: api.StreamBakery, Time: at, Text: "   leading and trailing spaces   "},
		{Seq: 5, Node: "n1", Stream: api.StreamStdout, Time: at, Text: big},
		{Seq: 6, Node: "n1", Stream: api.StreamStdout, Time: at, Text: "\x1b[1;32mOK\x1b[0m \r carriage"},
		{Seq: 7, Node: "n1", Stream: api.StreamStdout, Time: at, Text: "not UTF-8: \xff\xfe, a rune cut in half: \xe2\x82, NUL: \x00."},
		{Seq: 8, Node: "n2", Stream: api.StreamStderr, Time: at, Text: "\x00"},
	}
	if err := r.AppendLogs(ctx, id, in[:4]); err != nil {
		t.Fatal(err)
	}
	if err := r.AppendLogs(ctx, id, in[4:]); err != nil {
		t.Fatalf("append a 64 KiB line and lines that are not valid UTF-8: %v", err)
	}
	want := append([]api.LogLine(nil), in...)
	for i := range want {
		want[i].Text = store.ValidText(want[i].Text)
	}
	if want[6].Text != "not UTF-8: \ufffd\ufffd, a rune cut in half: \ufffd\ufffd, NUL: \ufffd." || want[7].Text != "\ufffd" {
		t.Fatalf("store.ValidText: %q %q", want[6].Text, want[7].Text) // the rule itself
	}
	got := mustLogs(t, r, id, 0, 0)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("log content (-want +got):\n%s", diff)
	}
	if len(got[4].Text) != 64<<10 {
		t.Fatalf("64 KiB line came back with %d bytes", len(got[4].Text))
	}
	// The returned lines are copies.
	got[0].Text = "changed"
	if mustLogs(t, r, id, 0, 1)[0].Text != "plain" {
		t.Fatal("store returned an alias of its own log")
	}
}

func testLogsSeqRules(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	const id = "web-1-5e900000"
	mustCreateRollout(t, r, Rollout(id, "web", 1, 0))
	line := func(seq int64) api.LogLine {
		return api.LogLine{Seq: seq, Node: "n1", Stream: api.StreamStdout, Text: fmt.Sprintf("line %d", seq)}
	}
	// Gaps are fine.
	ok := []api.LogLine{line(1), line(2), line(5), line(10)}
	if err := r.AppendLogs(ctx, id, ok); err != nil {
		t.Fatalf("append with gaps: %v", err)
	}
	for _, bad := range []struct {
		why   string
		lines []api.LogLine
	}{
		{"a seq already stored", []api.LogLine{line(10), line(11)}},
		{"a seq below the stored ones", []api.LogLine{line(7), line(11)}},
		{"a seq below the stored ones, later in the batch", []api.LogLine{line(11), line(12), line(3)}},
		{"seqs that do not increase", []api.LogLine{line(11), line(13), line(12)}},
		{"a repeated seq", []api.LogLine{line(11), line(11)}},
		{"seq 0", []api.LogLine{line(0)}},
		{"a negative seq", []api.LogLine{line(-1), line(11)}},
	} {
		if err := r.AppendLogs(ctx, id, bad.lines); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("append %s: err = %v, want ErrInvalid", bad.why, err)
		}
		if diff := cmp.Diff(ok, mustLogs(t, r, id, 0, 0)); diff != "" {
			t.Fatalf("a refused batch (%s) changed the log (-want +got):\n%s", bad.why, diff)
		}
	}
	// After refused batches the log goes on.
	if err := r.AppendLogs(ctx, id, []api.LogLine{line(11)}); err != nil {
		t.Fatal(err)
	}
	if got := mustLogs(t, r, id, 5, 0); len(got) != 2 || got[0].Seq != 10 || got[1].Seq != 11 {
		t.Fatalf("logs after 5: %v, want seqs 10, 11", got)
	}
	// Seqs are per rollout: another rollout starts at 1 again.
	const other = "web-1-5e900001"
	mustCreateRollout(t, r, Rollout(other, "web", 1, 0))
	if err := r.AppendLogs(ctx, other, []api.LogLine{line(1)}); err != nil {
		t.Fatalf("seq 1 in a second rollout: %v", err)
	}
	if got := mustLogs(t, r, other, 0, 0); len(got) != 1 {
		t.Fatalf("second rollout's log: %v", got)
	}
}

// Two rollouts' logs are written at once, each from its own goroutine, as
// the reconciler does for rollouts of different deployments (run with
// -race). Each keeps exactly its own lines, in order.
func testLogsConcurrent(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	ids := []string{"web-1-cc000001", "api-1-cc000002", "db-1-cc000003"}
	for _, id := range ids {
		mustCreateRollout(t, r, Rollout(id, strings.SplitN(id, "-", 2)[0], 1, 0))
	}
	const batches, size = 20, 50
	want := make([][]api.LogLine, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			for b := range batches {
				batch := logLines(int64(b*size), size)
				for j := range batch {
					batch[j].Text = fmt.Sprintf("%s %s", id, batch[j].Text)
				}
				if err := r.AppendLogs(ctx, id, batch); err != nil {
					errs[i] = fmt.Errorf("%s batch %d: %w", id, b, err)
					return
				}
				want[i] = append(want[i], batch...)
				// Readers run alongside the writers.
				if _, err := r.Logs(ctx, id, int64(b*size), size); err != nil {
					errs[i] = fmt.Errorf("%s read: %w", id, err)
					return
				}
			}
		})
	}
	// An update of each record while its log is written.
	for _, id := range ids {
		ro := mustGetRollout(t, r, id)
		ro.State = api.RolloutSucceeded
		if err := r.UpdateRollout(ctx, ro); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		if diff := cmp.Diff(want[i], mustLogs(t, r, id, 0, 0)); diff != "" {
			t.Errorf("log of %s (-want +got):\n%s", id, diff)
		}
		if got := mustGetRollout(t, r, id); got.State != api.RolloutSucceeded {
			t.Errorf("%s: state %q after update", id, got.State)
		}
	}
}

// The store does not cascade: a deployment's rollouts outlive it (their
// retention is a policy above the store).
func testRolloutDeploymentDeleted(t *testing.T, s store.Store, r store.Rollouts) {
	ctx := t.Context()
	mustCreate(t, s, Deployment("web", "/srv/repo"))
	ro := Rollout("web-1-de1e7e00", "web", 1, 0)
	mustCreateRollout(t, r, ro)
	lines := logLines(0, 3)
	if err := r.AppendLogs(ctx, ro.ID, lines); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, api.KindDeployment, "web", ""); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ro, mustGetRollout(t, r, ro.ID), rolloutOpts); diff != "" {
		t.Fatalf("rollout after its deployment was deleted (-want +got):\n%s", diff)
	}
	if got := listIDs(t, r, "web", 0); !cmp.Equal(got, []string{ro.ID}) {
		t.Fatalf("list after the deployment was deleted = %v", got)
	}
	if diff := cmp.Diff(lines, mustLogs(t, r, ro.ID, 0, 0)); diff != "" {
		t.Fatalf("logs after the deployment was deleted (-want +got):\n%s", diff)
	}
	// Still writable (a rollout in flight finishes its record and log), and
	// a re-created deployment of the same name sees the old rollouts.
	more := logLines(3, 2)
	if err := r.AppendLogs(ctx, ro.ID, more); err != nil {
		t.Fatal(err)
	}
	ro.State = api.RolloutCancelled
	if err := r.UpdateRollout(ctx, ro); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, Deployment("web", "/srv/repo"))
	if got := listIDs(t, r, "web", 0); !cmp.Equal(got, []string{ro.ID}) {
		t.Fatalf("list after the deployment was re-created = %v", got)
	}
	if got := mustLogs(t, r, ro.ID, 0, 0); len(got) != 5 {
		t.Fatalf("log has %d lines, want 5", len(got))
	}
}

// DeleteRollout removes one record and its log; the others stay as they
// were.
func testRolloutDelete(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	all := []*api.Rollout{
		Rollout("web-1-de100001", "web", 1, 0),
		Rollout("web-2-de100002", "web", 2, 10),
		Rollout("web-3-de100003", "web", 3, 20),
		Rollout("api-1-de100004", "api", 1, 5),
	}
	logs := map[string][]api.LogLine{}
	for i, ro := range all {
		mustCreateRollout(t, r, ro)
		// Several batches, enough for more than one page of any index.
		for b := range 3 {
			batch := logLines(int64(b*200), 200)
			for j := range batch {
				batch[j].Text = fmt.Sprintf("%s %s", ro.ID, batch[j].Text)
			}
			if i == 3 && b > 0 {
				break // one rollout with a short log
			}
			if err := r.AppendLogs(ctx, ro.ID, batch); err != nil {
				t.Fatal(err)
			}
			logs[ro.ID] = append(logs[ro.ID], batch...)
		}
	}
	// One without any log.
	empty := Rollout("web-2-de100005", "web", 2, 30)
	mustCreateRollout(t, r, empty)
	all = append(all, empty)

	gone := map[string]bool{}
	check := func(when string) {
		t.Helper()
		for _, ro := range all {
			if gone[ro.ID] {
				if _, err := r.GetRollout(ctx, ro.ID); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s: get deleted %s: err = %v, want ErrNotFound", when, ro.ID, err)
				}
				if _, err := r.Logs(ctx, ro.ID, 0, 0); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("%s: logs of deleted %s: err = %v, want ErrNotFound", when, ro.ID, err)
				}
				continue
			}
			if diff := cmp.Diff(ro, mustGetRollout(t, r, ro.ID), rolloutOpts); diff != "" {
				t.Errorf("%s: rollout %s changed (-want +got):\n%s", when, ro.ID, diff)
			}
			if diff := cmp.Diff(logs[ro.ID], mustLogs(t, r, ro.ID, 0, 0), rolloutOpts); diff != "" {
				t.Errorf("%s: log of %s changed (-want +got):\n%s", when, ro.ID, diff)
			}
		}
	}
	del := func(id string) {
		t.Helper()
		if err := r.DeleteRollout(ctx, id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
		gone[id] = true
	}

	del("web-2-de100002")
	check("after deleting web-2-de100002")
	if diff := cmp.Diff([]string{"web-3-de100003", "web-2-de100005", "web-1-de100001"}, listIDs(t, r, "web", 0)); diff != "" {
		t.Errorf("list after delete (-want +got):\n%s", diff)
	}
	// Writes to a deleted rollout fail and create nothing.
	if err := r.AppendLogs(ctx, "web-2-de100002", logLines(600, 1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("append logs to a deleted rollout: err = %v, want ErrNotFound", err)
	}
	if err := r.UpdateRollout(ctx, Rollout("web-2-de100002", "web", 2, 10)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update a deleted rollout: err = %v, want ErrNotFound", err)
	}
	if err := r.DeleteRollout(ctx, "web-2-de100002"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: err = %v, want ErrNotFound", err)
	}
	if err := r.DeleteRollout(ctx, "web-9-00000000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete a rollout that never was: err = %v, want ErrNotFound", err)
	}
	check("after refused writes")

	// A rollout without a log, and the last of another deployment.
	del(empty.ID)
	del("api-1-de100004")
	check("after deleting two more")
	if got := listIDs(t, r, "api", 0); len(got) != 0 {
		t.Errorf("list api after deleting its only rollout = %v", got)
	}
	if diff := cmp.Diff([]string{"web-3-de100003", "web-1-de100001"}, listIDs(t, r, "web", 0)); diff != "" {
		t.Errorf("list web (-want +got):\n%s", diff)
	}

	// The ID can be used again, with a new, empty log.
	again := Rollout("web-2-de100002", "web", 5, 50)
	mustCreateRollout(t, r, again)
	if got := mustLogs(t, r, again.ID, 0, 0); len(got) != 0 {
		t.Fatalf("log of a re-created rollout holds %d old lines", len(got))
	}
	if err := r.AppendLogs(ctx, again.ID, logLines(0, 2)); err != nil {
		t.Fatalf("append to a re-created rollout from seq 1: %v", err)
	}
	delete(gone, again.ID)
	all[1], logs[again.ID] = again, logLines(0, 2)
	check("after re-creating a deleted id")
}

// RolloutSpec returns a deployment spec with every part a rollback
// restores set, for the Spec round trip.
func RolloutSpec() *api.DeploymentSpec {
	port := 8080
	return &api.DeploymentSpec{
		Source:       api.Source{Repo: "https://example.com/web.git", Ref: "main"},
		Nodes:        []string{"n1", "n2"},
		NodeSelector: map[string]string{"role": "web"},
		Build:        api.Build{Install: "npm ci", Test: "npm test", Build: "npm run build"},
		Runtime:      api.RuntimeSystemd,
		Run: api.Run{Command: "node server.js", Port: &port,
			Env:     []api.EnvVar{{Name: "MODE", Value: "fast"}, {Name: "TOKEN", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "web", Key: "token"}}}},
			EnvFrom: []api.EnvFromSource{{SecretRef: "web-env"}}},
		HealthCheck:  api.HealthCheck{Path: "/healthz", Retries: 3, Timeout: &api.Duration{Duration: 2 * time.Second}},
		Ingress:      &api.Ingress{Hosts: []string{"web.example.com"}, TLS: &api.TLS{Email: "ops@example.com"}},
		Strategy:     api.Strategy{Type: api.StrategyBlueGreen, MaxUnavailable: 1},
		KeepReleases: 3,
	}
}

func testRolloutSpec(t *testing.T, _ store.Store, r store.Rollouts) {
	ctx := t.Context()
	ro := Rollout("web-3-5bec0000", "web", 3, 0)
	ro.Spec = RolloutSpec()
	want := copyRollout(ro)
	want.Spec = RolloutSpec()
	mustCreateRollout(t, r, ro)
	ro.Spec.Run.Env[0].Value = "changed-input"
	got := mustGetRollout(t, r, ro.ID)
	if diff := cmp.Diff(want, got, rolloutOpts); diff != "" {
		t.Fatalf("get: the spec did not round-trip (-want +got):\n%s", diff)
	}
	got.Spec.Build.Install = "changed-output"
	if diff := cmp.Diff(want.Spec, mustGetRollout(t, r, ro.ID).Spec, rolloutOpts); diff != "" {
		t.Fatalf("store aliased a returned spec (-want +got):\n%s", diff)
	}

	// Listings leave specs out.
	list, err := r.ListRollouts(ctx, "web", 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	if list[0].Spec != nil {
		t.Fatalf("ListRollouts returned a spec: %+v", list[0].Spec)
	}

	// Updating a listed record (no spec) keeps the stored spec.
	upd := list[0]
	upd.State, upd.Message = api.RolloutSucceeded, "done"
	if err := r.UpdateRollout(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got = mustGetRollout(t, r, ro.ID)
	if got.State != api.RolloutSucceeded {
		t.Fatalf("update lost: state %q", got.State)
	}
	if diff := cmp.Diff(want.Spec, got.Spec, rolloutOpts); diff != "" {
		t.Fatalf("an update without a spec changed the stored one (-want +got):\n%s", diff)
	}
	// An update with a spec replaces it.
	got.Spec.Run.Env = got.Spec.Run.Env[:1]
	got.Spec.Ingress = nil
	if err := r.UpdateRollout(ctx, got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got.Spec, mustGetRollout(t, r, ro.ID).Spec, rolloutOpts); diff != "" {
		t.Fatalf("update with a spec (-want +got):\n%s", diff)
	}
}
