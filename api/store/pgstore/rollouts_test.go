package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
	"bakery.dev/bakery/api/store/pgstore/pgtest"
	"bakery.dev/bakery/api/store/storetest"
)

func TestRolloutConformance(t *testing.T) {
	storetest.RunRollouts(t, func(t *testing.T) store.Store {
		return open(t, pgtest.DatabaseURL(t))
	})
}

// Rollout records and logs are not objects: writing them takes no write
// lock (so they go on while a transaction holds it) and sends no events.
func TestRolloutsNoWriteLockNoEvents(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	s := open(t, url)
	ctx := t.Context()
	ch, err := s.Watch(ctx, store.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A transaction holds the write lock until released.
	locked, release := make(chan struct{}), make(chan struct{})
	txnDone := make(chan error, 1)
	go func() {
		txnDone <- s.Txn(ctx, func(tx store.Tx) error {
			if _, err := tx.Create(ctx, storetest.Node("n1", "10.0.0.1", nil)); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	// Everything below would wait for the lock if it took it; the bound is
	// only there to fail instead of hanging.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ro := storetest.Rollout("web-1-aaaa0000", "web", 1, 0)
	if err := s.CreateRollout(wctx, ro); err != nil {
		t.Fatalf("create rollout while the write lock is held: %v", err)
	}
	for b := range 3 {
		if err := s.AppendLogs(wctx, ro.ID, []api.LogLine{{Seq: int64(b + 1), Stream: api.StreamBakery, Text: "x"}}); err != nil {
			t.Fatalf("append logs while the write lock is held: %v", err)
		}
	}
	ro.State = api.RolloutSucceeded
	if err := s.UpdateRollout(wctx, ro); err != nil {
		t.Fatalf("update rollout while the write lock is held: %v", err)
	}
	if lines, err := s.Logs(wctx, ro.ID, 0, 0); err != nil || len(lines) != 3 {
		t.Fatalf("logs while the write lock is held: %v, %v", lines, err)
	}
	close(release)
	if err := <-txnDone; err != nil {
		t.Fatal(err)
	}

	// The only events are the transaction's and a later object write.
	expectEvent(t, ch, store.Added, "Node/n1")
	if _, err := s.Create(ctx, storetest.Node("n2", "10.0.0.2", nil)); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ch, store.Added, "Node/n2")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var kinds string
	if err := conn.QueryRow(ctx, `SELECT string_agg(kind || '/' || name, ',' ORDER BY id) FROM events`).Scan(&kinds); err != nil {
		t.Fatal(err)
	}
	if kinds != "Node/n1,Node/n2" {
		t.Fatalf("events = %s, want Node/n1,Node/n2 only", kinds)
	}
}

// Deleting a rollout row deletes its log (the foreign key cascades); the
// store itself never deletes rollouts yet, retention will.
func TestRolloutLogsCascade(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	s := open(t, url)
	ctx := t.Context()
	ro := storetest.Rollout("web-1-aaaa0000", "web", 1, 0)
	if err := s.CreateRollout(ctx, ro); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, ro.ID, []api.LogLine{{Seq: 1, Stream: api.StreamBakery, Text: "x"}}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `DELETE FROM rollouts WHERE id = $1`, ro.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM rollout_logs`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d log lines left after deleting their rollout (%v)", n, err)
	}
}

// BenchmarkAppendLogs appends batches of 500 lines (the reconciler's batch
// size) of typical build output to one rollout.
func BenchmarkAppendLogs(b *testing.B) {
	s := open(b, pgtest.DatabaseURL(b))
	ctx := b.Context()
	ro := storetest.Rollout("web-1-bbbb0000", "web", 1, 0)
	if err := s.CreateRollout(ctx, ro); err != nil {
		b.Fatal(err)
	}
	const batch = 500
	text := "npm info run esbuild@0.19.12 postinstall node_modules/esbuild node install.js " + strings.Repeat("·", 10)
	seq := int64(0)
	lines := make([]api.LogLine, batch)
	b.ReportAllocs()
	for b.Loop() {
		now := api.Now()
		for i := range lines {
			seq++
			lines[i] = api.LogLine{Seq: seq, Node: fmt.Sprintf("node-%d", seq%3), Stream: api.StreamStdout, Time: now, Text: text}
		}
		if err := s.AppendLogs(ctx, ro.ID, lines); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "lines/s")
}
