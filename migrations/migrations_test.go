package migrations

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api/store/pgstore/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type applied struct {
	Version int64
	Name    string
	At      time.Time
}

func readApplied(t *testing.T, conn *pgx.Conn) []applied {
	t.Helper()
	rows, err := conn.Query(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	as, err := pgx.CollectRows(rows, pgx.RowToStructByPos[applied])
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestApplyConcurrentOnce(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	ms, err := All()
	if err != nil || len(ms) == 0 {
		t.Fatalf("embedded migrations: %d, %v", len(ms), err)
	}
	// Two servers starting at once, each with its own connection.
	const servers = 2
	conns := []*pgx.Conn{connect(t, url), connect(t, url)}
	var wg sync.WaitGroup
	errs := make([]error, servers)
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Apply(t.Context(), conns[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
	}
	first := readApplied(t, conns[0])
	if len(first) != len(ms) {
		t.Fatalf("applied %d migrations, want %d: %+v", len(first), len(ms), first)
	}
	for i, m := range ms {
		if first[i].Version != m.Version || first[i].Name != m.Name {
			t.Fatalf("row %d = %+v, want %d %s", i, first[i], m.Version, m.Name)
		}
	}
	// Re-running is a no-op.
	if err := Apply(t.Context(), conns[1]); err != nil {
		t.Fatal(err)
	}
	again := readApplied(t, conns[0])
	if len(again) != len(first) || !again[len(again)-1].At.Equal(first[len(first)-1].At) {
		t.Fatalf("re-run changed schema_migrations: %+v, before %+v", again, first)
	}
}

func TestApplyFailureRollsBack(t *testing.T) {
	url := pgtest.DatabaseURL(t)
	conn := connect(t, url)
	ms, err := load(fstest.MapFS{
		"0001_a.sql": {Data: []byte("CREATE TABLE a (x int); CREATE TABLE a2 (x int);")},
		"0002_b.sql": {Data: []byte("CREATE TABLE b (x int); SELECT no_such_function();")},
		"0003_c.sql": {Data: []byte("CREATE TABLE c (x int);")},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = apply(t.Context(), conn, ms)
	if err == nil || !strings.Contains(err.Error(), "0002_b.sql") {
		t.Fatalf("err = %v, want a failure naming 0002_b.sql", err)
	}
	got := readApplied(t, conn)
	if len(got) != 1 || got[0].Version != 1 {
		t.Fatalf("applied %+v, want only 0001", got)
	}
	var tables []string
	rows, _ := conn.Query(t.Context(), `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('a', 'a2', 'b', 'c') ORDER BY 1`)
	tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || strings.Join(tables, ",") != "a,a2" {
		t.Fatalf("tables %v %v, want a,a2 (0002 rolled back, 0003 not run)", tables, err)
	}
	// A database migrated by a newer binary is refused.
	if err := apply(t.Context(), conn, ms[:0]); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("older binary: err = %v", err)
	}
}

func TestLoadRejectsBadNames(t *testing.T) {
	for _, fsys := range []fstest.MapFS{
		{"1_x.sql": {}},
		{"0001-x.sql": {}},
		{"0001_x.sql": {}, "0001_y.sql": {}},
	} {
		if _, err := load(fsys); err == nil {
			t.Errorf("load(%v) accepted bad names", fsys)
		}
	}
}
