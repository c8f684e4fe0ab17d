package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/storetest"
	"bakery.dev/bakery/reconciler/internal/testenv"
)

// pruneStore returns a file store holding n rollouts of "web" (revisions
// 1…n, one log line each) and two of "api".
func pruneStore(t *testing.T, n int) Store {
	t.Helper()
	st := testenv.FileStore(t).(Store)
	create := func(id, dep string, rev int64) {
		if err := st.CreateRollout(t.Context(), storetest.Rollout(id, dep, rev, int(rev))); err != nil {
			t.Fatal(err)
		}
		if err := st.AppendLogs(t.Context(), id, []api.LogLine{{Seq: 1, Stream: api.StreamBakery, Text: id}}); err != nil {
			t.Fatal(err)
		}
	}
	for rev := 1; rev <= n; rev++ {
		create(webID(rev), "web", int64(rev))
	}
	create("api-1-00000000", "api", 1)
	create("api-2-00000000", "api", 2)
	return st
}

func webID(rev int) string { return fmt.Sprintf("web-%d-00000000", rev) }

// webIDs returns the IDs of web's rollouts of the given revisions, newest
// first as ListRollouts orders them.
func webIDs(revs ...int) []string {
	var out []string
	for _, rev := range revs {
		out = append(out, webID(rev))
	}
	return out
}

func revRange(from, to int) []int {
	var out []int
	for rev := from; rev >= to; rev-- {
		out = append(out, rev)
	}
	return out
}

// checkRollouts checks that deployment dep has exactly the rollouts want
// (in list order), each with its log, and that the others are gone with
// their logs.
func checkRollouts(t *testing.T, st Store, dep string, want []string, gone []string) {
	t.Helper()
	list, err := st.ListRollouts(t.Context(), dep, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ro := range list {
		got = append(got, ro.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("rollouts of %s (-want +got):\n%s", dep, diff)
	}
	for _, id := range want {
		if lines, err := st.Logs(t.Context(), id, 0, 0); err != nil || len(lines) != 1 || lines[0].Text != id {
			t.Fatalf("log of kept rollout %s: %v, %v", id, lines, err)
		}
	}
	for _, id := range gone {
		if _, err := st.Logs(t.Context(), id, 0, 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("log of deleted rollout %s: err = %v, want ErrNotFound", id, err)
		}
	}
}

func TestPruneRollouts(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	t.Run("KeepsNewest", func(t *testing.T) {
		st := pruneStore(t, 12)
		r := &Reconciler{Store: st, KeepRollouts: 5, Logger: quiet}
		r.pruneRollouts(t.Context(), "web", webID(12))
		checkRollouts(t, st, "web", webIDs(revRange(12, 8)...), webIDs(revRange(7, 1)...))
		checkRollouts(t, st, "api", []string{"api-2-00000000", "api-1-00000000"}, nil)
		// Again: nothing more to delete.
		r.pruneRollouts(t.Context(), "web", webID(12))
		checkRollouts(t, st, "web", webIDs(revRange(12, 8)...), nil)
	})
	t.Run("CurrentNeverDeleted", func(t *testing.T) {
		// The current rollout sorts last (a rollback to an older
		// revision): it stays, with the 4 newest others.
		st := pruneStore(t, 12)
		r := &Reconciler{Store: st, KeepRollouts: 5, Logger: quiet}
		r.pruneRollouts(t.Context(), "web", webID(1))
		checkRollouts(t, st, "web", webIDs(12, 11, 10, 9, 1), webIDs(revRange(8, 2)...))
		// Keep 1: only the current one.
		r.KeepRollouts = 1
		r.pruneRollouts(t.Context(), "web", webID(1))
		checkRollouts(t, st, "web", webIDs(1), webIDs(12, 11, 10, 9))
	})
	t.Run("Default", func(t *testing.T) {
		st := pruneStore(t, DefaultKeepRollouts+7)
		r := &Reconciler{Store: st, Logger: quiet}
		r.pruneRollouts(t.Context(), "web", webID(DefaultKeepRollouts+7))
		checkRollouts(t, st, "web", webIDs(revRange(DefaultKeepRollouts+7, 8)...), webIDs(revRange(7, 1)...))
	})
	t.Run("RollbackTargetsSurviveFailures", func(t *testing.T) {
		// Revisions 1 and 2 succeeded, then ten rollouts failed: the two
		// succeeded ones stay (a rollback needs them) beside the newest.
		st := pruneStore(t, 12)
		for rev := 1; rev <= 12; rev++ {
			ro, err := st.GetRollout(t.Context(), webID(rev))
			if err != nil {
				t.Fatal(err)
			}
			ro.State = api.RolloutFailed
			if rev <= 2 {
				ro.State = api.RolloutSucceeded
			}
			if err := st.UpdateRollout(t.Context(), ro); err != nil {
				t.Fatal(err)
			}
		}
		r := &Reconciler{Store: st, KeepRollouts: 3, Logger: quiet}
		r.pruneRollouts(t.Context(), "web", webID(12))
		checkRollouts(t, st, "web", webIDs(12, 11, 10, 2, 1), webIDs(revRange(9, 3)...))
	})
	t.Run("UndoTargetsKept", func(t *testing.T) {
		// Revisions 1…6 succeeded, each also had a failed rollout and
		// a drift repair (revision r: rollouts 3r-2 failed, 3r-1 and 3r
		// succeeded; ListRollouts sorts them newest first within the
		// revision), then revision 7 failed ten times. Keep 3: the
		// current one, the 2 newest others, and the newest succeeded
		// rollout of the 3 newest revisions that succeeded — every
		// revision history shows as succeeded stays an undo target.
		st := testenv.FileStore(t).(Store)
		id := func(n int) string { return fmt.Sprintf("web-%d-%08d", n, n) }
		n := 0
		add := func(rev int64, state string) {
			n++
			ro := storetest.Rollout(id(n), "web", rev, n)
			ro.State = state
			if err := st.CreateRollout(t.Context(), ro); err != nil {
				t.Fatal(err)
			}
			if err := st.AppendLogs(t.Context(), ro.ID, []api.LogLine{{Seq: 1, Stream: api.StreamBakery, Text: "x"}}); err != nil {
				t.Fatal(err)
			}
		}
		for rev := int64(1); rev <= 6; rev++ {
			add(rev, api.RolloutFailed)
			add(rev, api.RolloutSucceeded)
			add(rev, api.RolloutSucceeded)
		}
		for range 10 {
			add(7, api.RolloutFailed)
		}
		current := id(n)
		r := &Reconciler{Store: st, KeepRollouts: 3, Logger: quiet}
		r.pruneRollouts(t.Context(), "web", current)
		// Revision 7: 28 (current), 27, 26 (the newest others); the
		// targets: the newest succeeded of revisions 6, 5, 4 (18, 15, 12).
		want := []string{current, id(27), id(26), id(18), id(15), id(12)}
		list, err := st.ListRollouts(t.Context(), "web", 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ro := range list {
			got = append(got, ro.ID)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("kept (-want +got):\n%s", diff)
		}
		// pruneList is what pruneRollouts deletes; again: nothing.
		if again := pruneList(list, current, 3); len(again) != 0 {
			t.Fatalf("a second prune deletes %d more", len(again))
		}
	})
	t.Run("NegativeKeepsAll", func(t *testing.T) {
		st := pruneStore(t, DefaultKeepRollouts+3)
		r := &Reconciler{Store: st, KeepRollouts: -1, Logger: quiet}
		r.pruneRollouts(t.Context(), "web", webID(1))
		checkRollouts(t, st, "web", webIDs(revRange(DefaultKeepRollouts+3, 1)...), nil)
	})
	t.Run("CancelledContext", func(t *testing.T) {
		// A superseded rollout's context is cancelled: pruning still runs.
		st := pruneStore(t, 4)
		r := &Reconciler{Store: st, KeepRollouts: 2, Logger: quiet}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r.pruneRollouts(ctx, "web", webID(4))
		checkRollouts(t, st, "web", webIDs(4, 3), webIDs(2, 1))
	})
}

// TestCloseOrphans: a rollout created but never named by the status (the
// store failed before the start was recorded) is cancelled by the next
// rollout's start or converged reconcile; the current one and the one
// being started are left alone.
func TestCloseOrphans(t *testing.T) {
	st := testenv.FileStore(t).(Store)
	ctx := t.Context()
	for rev := int64(1); rev <= 3; rev++ {
		if err := st.CreateRollout(ctx, storetest.Rollout(webID(int(rev)), "web", rev, int(rev))); err != nil {
			t.Fatal(err)
		}
	}
	// Revision 1 ran to its end and is the status's current rollout;
	// revision 2 is the orphan; revision 3 is the one starting now.
	done, _ := st.GetRollout(ctx, webID(1))
	done.State = api.RolloutSucceeded
	if err := st.UpdateRollout(ctx, done); err != nil {
		t.Fatal(err)
	}
	d := helloDeploymentFor("web", "https://example.test/app.git")
	d.Status.CurrentRollout = &api.RolloutRef{ID: webID(1), State: api.RolloutSucceeded}
	r := &Reconciler{Store: st, Logger: slog.New(slog.DiscardHandler)}
	r.closeOrphans(ctx, d, webID(3))
	want := map[int]string{1: api.RolloutSucceeded, 2: api.RolloutCancelled, 3: api.RolloutRunning}
	for rev, state := range want {
		ro, err := st.GetRollout(ctx, webID(rev))
		if err != nil || ro.State != state {
			t.Errorf("rollout %d: %v %v, want %s", rev, ro.State, err, state)
		}
	}
}
