package pgtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Writes counts the rows written to a database, exactly and at once (the
// statistics views, pg_stat_user_tables, lag behind by up to their flush
// interval): CountWrites adds a row trigger to every table of the public
// schema that records each insert, update and delete in a log table.
// Rows of objects are counted per kind ("objects/Node").
type Writes struct {
	conn *pgx.Conn
}

// writeLog is the table the triggers write to; it is not counted.
const writeLog = "pgtest_write_log"

// CountWrites installs the counting triggers on the database at url
// (after its migrations ran: tables created later are not counted).
func CountWrites(t testing.TB, url string) *Writes {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: count writes: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+writeLog+` (tbl text NOT NULL);
CREATE OR REPLACE FUNCTION pgtest_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	k text := '';
BEGIN
	IF TG_TABLE_NAME = 'objects' THEN
		IF TG_OP = 'DELETE' THEN k := '/' || OLD.kind; ELSE k := '/' || NEW.kind; END IF;
	END IF;
	INSERT INTO `+writeLog+` (tbl) VALUES (TG_TABLE_NAME || k);
	RETURN NULL;
END $$;`)
	if err != nil {
		t.Fatalf("pgtest: count writes: %v", err)
	}
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> $1`, writeLog)
	if err != nil {
		t.Fatalf("pgtest: count writes: %v", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("pgtest: count writes: %v", err)
	}
	for _, tb := range tables {
		q := fmt.Sprintf(`CREATE OR REPLACE TRIGGER pgtest_count_write AFTER INSERT OR UPDATE OR DELETE ON %s
			FOR EACH ROW EXECUTE FUNCTION pgtest_count_write()`, pgx.Identifier{tb}.Sanitize())
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("pgtest: count writes on %s: %v", tb, err)
		}
	}
	return &Writes{conn: conn}
}

// Take returns the rows written since the last Take (or CountWrites),
// per table ("objects/Kind" for objects), and starts counting afresh.
func (w *Writes) Take(t testing.TB) map[string]int {
	t.Helper()
	rows, err := w.conn.Query(context.Background(), `WITH d AS (DELETE FROM `+writeLog+` RETURNING tbl)
		SELECT tbl, count(*)::int FROM d GROUP BY tbl`)
	if err != nil {
		t.Fatalf("pgtest: take writes: %v", err)
	}
	out := map[string]int{}
	var tbl string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&tbl, &n}, func() error {
		out[tbl] = n
		return nil
	})
	if err != nil {
		t.Fatalf("pgtest: take writes: %v", err)
	}
	return out
}

// Format lists counts as "table=n, …" in table order ("none" when empty).
func Format(counts map[string]int) string {
	if len(counts) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(counts)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%d", k, counts[k])
	}
	return b.String()
}
