package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
)

//go:embed *.sql
var files embed.FS

// lockKey is the advisory lock every Apply takes before reading or changing
// the schema ("bakery m" in ASCII). It is fixed forever: servers of
// different versions must agree on it.
const lockKey int64 = 0x62616b657279206d

// Migration is one numbered SQL file.
type Migration struct {
	Version int64
	Name    string // the file name, e.g. "0001_init.sql"
	SQL     string
}

// DB is what Apply needs from a connection: *pgx.Conn, *pgxpool.Pool and
// pgx.Tx all provide it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// All returns the embedded migrations in order.
func All() ([]Migration, error) { return load(files) }

// Apply applies every pending migration in order, each in its own
// transaction together with its schema_migrations row. Concurrent callers
// (other servers) are serialised by an advisory lock, so each migration is
// applied exactly once. A database that records a version this binary does
// not know was migrated by a newer Bakery: Apply refuses to touch it.
func Apply(ctx context.Context, db DB) error {
	ms, err := All()
	if err != nil {
		return err
	}
	return apply(ctx, db, ms)
}

var fileName = regexp.MustCompile(`^([0-9]{4,})_[a-z0-9_]+\.sql$`)

func load(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		m := fileName.FindStringSubmatch(path.Base(name))
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_words.sql", name)
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: bad version", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", ms[i-1].Name, ms[i].Name)
		}
	}
	return ms, nil
}

const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    bigint PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// apply runs one transaction per pending migration. Each transaction first
// takes the advisory lock, then reads what is applied: a server that waited
// for the lock sees the work of the one that held it and moves on.
func apply(ctx context.Context, db DB, ms []Migration) error {
	known := map[int64]bool{}
	for _, m := range ms {
		known[m.Version] = true
	}
	for {
		done, err := applyNext(ctx, db, ms, known)
		if err != nil || done {
			return err
		}
	}
}

// applyNext applies the first pending migration; done reports that none was.
func applyNext(ctx context.Context, db DB, ms []Migration, known map[int64]bool) (done bool, err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("migrations: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return false, fmt.Errorf("migrations: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, createTable); err != nil {
		return false, fmt.Errorf("migrations: create schema_migrations: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return false, fmt.Errorf("migrations: read applied: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return false, fmt.Errorf("migrations: read applied: %w", err)
	}
	have := map[int64]bool{}
	for _, v := range applied {
		if !known[v] {
			return false, fmt.Errorf("migrations: the database has schema version %d, which this binary does not know (it was migrated by a newer Bakery)", v)
		}
		have[v] = true
	}
	for _, m := range ms {
		if have[m.Version] {
			continue
		}
		// No arguments: pgx sends the file with the simple protocol, so
		// it may hold several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return false, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return false, fmt.Errorf("migration %s: record: %w", m.Name, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return false, fmt.Errorf("migration %s: commit: %w", m.Name, err)
		}
		return false, nil
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("migrations: commit: %w", err)
	}
	return true, nil
}
