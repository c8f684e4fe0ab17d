package pgtest_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api/store/pgstore/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestFreshDatabases(t *testing.T) {
	ctx := t.Context()
	a, b := pgtest.DatabaseURL(t), pgtest.DatabaseURL(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	for _, u := range []string{a, b} {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var tables int
		err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables)
		conn.Close(ctx)
		if err != nil || tables != 0 {
			t.Fatalf("%s: %d tables, %v; want a fresh, empty database", u, tables, err)
		}
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}
}
