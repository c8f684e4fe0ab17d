// Package pgstore is the PostgreSQL implementation of store.Store, for
// control planes where several `bakery server` processes share one
// database. Open connects (pgxpool), applies the schema (package
// migrations) and starts the store's change listener.
//
// # Writes
//
// Objects live in one table, objects(kind, name, …), with spec, status,
// labels and annotations as JSONB. Every write runs in a transaction that
// first takes a transaction-level advisory lock on a fixed key (the write
// lock), so writing transactions are serialised: from the lock to the
// commit nothing else changes objects. That gives three things at once:
//
//   - optimistic concurrency is exact: a transaction compares the caller's
//     resourceVersion with the stored one while no one else can change it,
//     so of concurrent writers carrying one resourceVersion exactly one wins
//     (the others get store.ErrConflict); the UPDATE and DELETE statements
//     check the expected resourceVersion in their WHERE clause as well;
//   - resource versions come from one sequence while the lock is held, so
//     they increase in commit order across all servers;
//   - events are committed in id order (see below).
//
// Inside a transaction the store keeps what it has read and written and
// sends the writes as a few set-based statements (one UPDATE, one INSERT,
// one DELETE, one event INSERT) when the transaction commits or before a
// List needs them. Because of the write lock that view is exact, not a
// cache that can go stale. Once a transaction has looked up many objects of
// one kind one at a time (as store.Apply does), it reads the whole kind in
// one query. Unchanged updates write nothing: spec, labels and annotations
// (or status) are compared as canonical JSON before anything is sent.
//
// Reads outside Txn (Get, List) use the pool directly and do not take the
// lock. Inside Txn, fn must use its Tx, not the Store: the transaction holds
// a pool connection and the write lock.
//
// # Watch
//
// Every write inserts a row into events(id, kind, name, type, object) in
// its own transaction and calls pg_notify('bakery_events', ”). A bigserial
// id is allocated when the row is inserted, not when it commits, so two
// transactions could commit ids out of order and a reader that has seen
// id 11 would never read a 10 that committed later. The write lock rules
// that out: ids are allocated only while holding it, and it is held until
// commit, so events commit in id order and "id > last seen" never skips
// one.
//
// Each Store has one listener connection (a dedicated pgx.Conn, not from
// the pool) that LISTENs and, on every notification (and every few seconds
// in case one is lost), reads events WHERE id > last ORDER BY id and fans
// them out to the Store's watchers. Each watcher has a buffered channel; one
// that falls behind has its channel closed, as store.Store documents. When
// the listener's connection drops it reconnects with backoff and catches up
// from the last id, so nothing is lost as long as the outage is shorter
// than the event retention (10 minutes by default, pruned every minute);
// after a longer outage every watcher's channel is closed so that its owner
// re-lists. A Watch started at time T delivers exactly the events that
// commit after T.
//
// # Rollouts
//
// Rollout records and their logs (store.Rollouts) are not objects: they
// live in their own tables, rollouts(id, deployment, revision, created_at,
// record JSONB) and rollout_logs(rollout_id, seq, node, stream, time,
// text), are never watched and write no events. Each write is one
// statement in its own implicit transaction, without the write lock, so
// a rollout in progress neither waits for object transactions nor holds
// them up. AppendLogs sends a batch as arrays to one INSERT … SELECT FROM
// unnest(…), which inserts nothing unless the batch's first seq is above
// the largest one stored (the caller's order is checked in Go first); the
// foreign key to rollouts turns an unknown rollout into store.ErrNotFound.
// Logs answers in one query whether the rollout exists and its lines.
// Deleting a Deployment leaves its rollouts; deleting a rollout row deletes
// its log (ON DELETE CASCADE).
//
// # Settings
//
// Settings (store.Settings) live in settings(name, value bytea,
// updated_at), outside objects and events, each write one statement
// without the write lock. CreateSetting is an INSERT … ON CONFLICT DO
// NOTHING, so of servers minting one value at once exactly one wins (the
// control plane's SSH identity is minted that way). Secrets are sealed by
// the caller (package sealed) before they are stored.
package pgstore
