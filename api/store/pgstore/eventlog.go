package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

// Events (store.Events) live in the table events_log (events is the
// change log behind Watch). Each AddEvent is one transaction: it takes a
// transaction-level advisory lock on its object only (so adds for one
// object are serialised and the trim sees every row, while other objects
// and object writes go on), inserts the event and deletes its object's
// events beyond store.MaxEventsPerObject.

var _ store.Events = (*Store)(nil)

// eventLockSpace keys the per-object advisory locks of AddEvent ("bakery
// e" in ASCII, as the first key of the two-key form).
const eventLockSpace int32 = 0x62616b65

const trimEventsSQL = `DELETE FROM events_log WHERE id IN (
	SELECT id FROM events_log WHERE object = $1
	ORDER BY time DESC NULLS LAST, id DESC OFFSET $2)`

// checkEventObject checks an event's object, "Kind/name".
func checkEventObject(object string) error {
	kind, name, ok := strings.Cut(object, "/")
	if !ok {
		return fmt.Errorf("%w: event object %q: want Kind/name", store.ErrInvalid, object)
	}
	if err := store.CheckName(kind, name); err != nil {
		return fmt.Errorf("event object: %w", err)
	}
	return nil
}

// AddEvent implements store.Events.
func (s *Store) AddEvent(ctx context.Context, e *api.Event) error {
	if e == nil {
		return fmt.Errorf("%w: no event", store.ErrInvalid)
	}
	if e.ID == "" {
		return fmt.Errorf("%w: event id is required", store.ErrInvalid)
	}
	if err := checkEventObject(e.Object); err != nil {
		return err
	}
	// encoding/json writes invalid UTF-8 as U+FFFD, byte by byte, as
	// store.ValidText does; NUL it writes as \u0000, which JSONB refuses.
	rec, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("%w: event %s: %v", store.ErrInvalid, e.ID, err)
	}
	rec = store.ReplaceJSONNul(rec)
	id := store.ValidText(e.ID)
	var at *time.Time
	if e.Time != nil && !e.Time.IsZero() {
		t := e.Time.UTC().Truncate(time.Second)
		at = &t
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, eventLockSpace, e.Object); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO events_log (id, object, time, record) VALUES ($1, $2, $3, $4)`,
			id, e.Object, at, rec); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, trimEventsSQL, e.Object, store.MaxEventsPerObject)
		return err
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
			return fmt.Errorf("event %q: %w", id, store.ErrAlreadyExists)
		}
		return fmt.Errorf("pgstore: add event %q: %w", id, mapErr(err))
	}
	return nil
}

// ListEvents implements store.Events.
func (s *Store) ListEvents(ctx context.Context, object string, limit int) ([]*api.Event, error) {
	if object != "" {
		if err := checkEventObject(object); err != nil {
			return nil, err
		}
	}
	var rows pgx.Rows
	var err error
	if object == "" {
		rows, err = s.pool.Query(ctx, `SELECT id, record FROM events_log
			ORDER BY time DESC NULLS LAST, id DESC LIMIT $1`, sqlLimit(limit))
	} else {
		rows, err = s.pool.Query(ctx, `SELECT id, record FROM events_log WHERE object = $1
			ORDER BY time DESC NULLS LAST, id DESC LIMIT $2`, object, sqlLimit(limit))
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: list events of %q: %w", object, mapErr(err))
	}
	out := []*api.Event{}
	var id string
	var rec []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &rec}, func() error {
		var e api.Event
		if err := json.Unmarshal(rec, &e); err != nil {
			return fmt.Errorf("event %q: %w: %v", id, store.ErrCorrupt, err)
		}
		out = append(out, &e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: list events of %q: %w", object, mapErr(err))
	}
	return out, nil
}
