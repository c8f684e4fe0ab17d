// Package migrations holds Bakery's PostgreSQL schema as numbered SQL files
// (0001_init.sql, 0002_….sql), embedded in the binary, and Apply, which
// brings a database up to date at start.
//
// Each file is applied once, in order of its number, inside its own
// transaction, and recorded in schema_migrations(version, name,
// applied_at). Several servers may start at once against one database: a
// transaction-level advisory lock on a fixed key serialises them, so every
// migration runs exactly once. Files are never edited after release; a
// change to the schema is a new file.
//
// The package knows nothing of Bakery's objects; the postgres store
// (api/store/pgstore) calls Apply from its Open.
package migrations
