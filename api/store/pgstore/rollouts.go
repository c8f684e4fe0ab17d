package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"bakery.dev/bakery/api"
	"bakery.dev/bakery/api/store"
)

var _ store.Rollouts = (*Store)(nil)

// CreateRollout implements store.Rollouts.
func (s *Store) CreateRollout(ctx context.Context, r *api.Rollout) error {
	rec, spec, created, err := rolloutRecord(r)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO rollouts (id, deployment, revision, created_at, record, spec)
		VALUES ($1, $2, $3, $4, $5, $6)`, r.ID, r.Deployment, r.Revision, created, rec, spec)
	if err != nil {
		return fmt.Errorf("pgstore: create rollout %q: %w", r.ID, mapErr(err))
	}
	return nil
}

// UpdateRollout implements store.Rollouts. A nil Spec keeps the stored
// one (coalesce).
func (s *Store) UpdateRollout(ctx context.Context, r *api.Rollout) error {
	rec, spec, created, err := rolloutRecord(r)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE rollouts SET deployment = $2, revision = $3, created_at = $4, record = $5,
		spec = coalesce($6, spec) WHERE id = $1`, r.ID, r.Deployment, r.Revision, created, rec, spec)
	if err != nil {
		return fmt.Errorf("pgstore: update rollout %q: %w", r.ID, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("rollout %q: %w", r.ID, store.ErrNotFound)
	}
	return nil
}

// GetRollout implements store.Rollouts.
func (s *Store) GetRollout(ctx context.Context, id string) (*api.Rollout, error) {
	if err := store.CheckRolloutID(id); err != nil {
		return nil, err
	}
	var rec, spec []byte
	err := s.pool.QueryRow(ctx, `SELECT record, spec FROM rollouts WHERE id = $1`, id).Scan(&rec, &spec)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: get rollout %q: %w", id, mapErr(err))
	}
	r, err := decodeRollout(id, rec)
	if err != nil || spec == nil {
		return r, err
	}
	if err := json.Unmarshal(spec, &r.Spec); err != nil {
		return nil, fmt.Errorf("pgstore: rollout %q: spec: %w: %v", id, store.ErrCorrupt, err)
	}
	return r, nil
}

// ListRollouts implements store.Rollouts: the records without their
// specs (the spec column is not read).
func (s *Store) ListRollouts(ctx context.Context, deployment string, limit int) ([]*api.Rollout, error) {
	if msg := api.ValidateName(deployment); msg != "" {
		return nil, fmt.Errorf("%w: rollouts of deployment: %s", store.ErrInvalid, msg)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, record FROM rollouts WHERE deployment = $1
		ORDER BY revision DESC, created_at DESC NULLS LAST, id DESC LIMIT $2`, deployment, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("pgstore: list rollouts of %s: %w", deployment, mapErr(err))
	}
	out := []*api.Rollout{}
	var id string
	var rec []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &rec}, func() error {
		r, err := decodeRollout(id, rec)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: list rollouts of %s: %w", deployment, mapErr(err))
	}
	return out, nil
}

// appendLogsSQL inserts one batch of lines in one statement, unless its
// first seq ($7) is not above the largest one stored for the rollout: then
// it inserts nothing. A rollout that does not exist fails the foreign key.
const appendLogsSQL = `INSERT INTO rollout_logs (rollout_id, seq, node, stream, time, text)
SELECT $1, u.seq, u.node, u.stream, u.time, u.text
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[], $6::text[]) AS u (seq, node, stream, time, text)
WHERE $7::bigint > (SELECT coalesce(max(seq), 0) FROM rollout_logs WHERE rollout_id = $1)`

// AppendLogs implements store.Rollouts. The batch is one INSERT in its own
// implicit transaction: it takes no write lock and writes no event, so
// logs neither wait for object writes nor hold them up.
func (s *Store) AppendLogs(ctx context.Context, id string, lines []api.LogLine) error {
	if err := store.CheckRolloutID(id); err != nil {
		return err
	}
	if len(lines) == 0 {
		return nil
	}
	n := len(lines)
	seqs := make([]int64, n)
	nodes := make([]string, n)
	streams := make([]string, n)
	times := make([]pgtype.Timestamptz, n)
	texts := make([]string, n)
	prev := int64(0)
	for i, l := range lines {
		if l.Seq <= prev {
			return fmt.Errorf("%w: rollout %s: log line seq %d does not follow %d", store.ErrInvalid, id, l.Seq, prev)
		}
		prev = l.Seq
		seqs[i] = l.Seq
		nodes[i] = store.ValidText(l.Node)
		streams[i] = store.ValidText(l.Stream)
		texts[i] = store.ValidText(l.Text)
		if l.Time != nil && !l.Time.IsZero() {
			times[i] = pgtype.Timestamptz{Time: l.Time.UTC().Truncate(time.Second), Valid: true}
		}
	}
	tag, err := s.pool.Exec(ctx, appendLogsSQL, id, seqs, nodes, streams, times, texts, seqs[0])
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			switch pgErr.Code {
			case "23503": // foreign_key_violation: no such rollout
				return fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
			case "23505": // unique_violation: a concurrent append took a seq
				return fmt.Errorf("%w: rollout %s: log line seq already stored: %w", store.ErrInvalid, id, err)
			}
		}
		return fmt.Errorf("pgstore: append logs of rollout %s: %w", id, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		// The rollout exists (else the foreign key had failed), and the
		// batch does not follow its log.
		return fmt.Errorf("%w: rollout %s: log line seq %d is not above the stored ones", store.ErrInvalid, id, seqs[0])
	}
	return nil
}

// Logs implements store.Rollouts. One query answers both whether the
// rollout exists (no row) and its lines (a row of NULLs when there are
// none).
func (s *Store) Logs(ctx context.Context, id string, after int64, limit int) ([]api.LogLine, error) {
	if err := store.CheckRolloutID(id); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT l.seq, l.node, l.stream, l.time, l.text FROM rollouts r
		LEFT JOIN LATERAL (SELECT seq, node, stream, time, text FROM rollout_logs
			WHERE rollout_id = r.id AND seq > $2 ORDER BY seq LIMIT $3) l ON true
		WHERE r.id = $1 ORDER BY l.seq`, id, after, sqlLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("pgstore: logs of rollout %s: %w", id, mapErr(err))
	}
	out := []api.LogLine{}
	found := false
	var (
		seq                pgtype.Int8
		node, stream, text pgtype.Text
		at                 pgtype.Timestamptz
	)
	_, err = pgx.ForEachRow(rows, []any{&seq, &node, &stream, &at, &text}, func() error {
		found = true
		if !seq.Valid {
			return nil // the rollout, without lines
		}
		l := api.LogLine{Seq: seq.Int64, Node: node.String, Stream: stream.String, Text: text.String}
		if at.Valid {
			l.Time = api.NewTime(at.Time)
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: logs of rollout %s: %w", id, mapErr(err))
	}
	if !found {
		return nil, fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	return out, nil
}

// DeleteRollout implements store.Rollouts. Its log goes with it (ON DELETE
// CASCADE), in the same statement.
func (s *Store) DeleteRollout(ctx context.Context, id string) error {
	if err := store.CheckRolloutID(id); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM rollouts WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("pgstore: delete rollout %q: %w", id, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("rollout %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// sqlLimit turns a limit (<= 0: all) into a LIMIT argument (NULL: all).
func sqlLimit(limit int) *int64 {
	if limit <= 0 {
		return nil
	}
	l := int64(limit)
	return &l
}

// rolloutRecord checks r and returns its JSONB record without the spec,
// the spec's JSONB (nil when r has none), both with strings as
// store.ValidText returns them, and its created_at column (whole seconds,
// nil when unset, as the record reads back).
func rolloutRecord(r *api.Rollout) (rec, spec []byte, created *time.Time, err error) {
	if r == nil {
		return nil, nil, nil, fmt.Errorf("%w: no rollout", store.ErrInvalid)
	}
	if err := store.CheckRolloutID(r.ID); err != nil {
		return nil, nil, nil, err
	}
	if msg := api.ValidateName(r.Deployment); msg != "" {
		return nil, nil, nil, fmt.Errorf("%w: rollout %s: deployment: %s", store.ErrInvalid, r.ID, msg)
	}
	// encoding/json already writes invalid UTF-8 as U+FFFD, byte by byte,
	// as store.ValidText does; NUL it writes as \u0000, which JSONB
	// refuses.
	bare := *r
	bare.Spec = nil
	rec, err = json.Marshal(&bare)
	if err == nil && r.Spec != nil {
		spec, err = json.Marshal(r.Spec)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: rollout %s: %v", store.ErrInvalid, r.ID, err)
	}
	rec = store.ReplaceJSONNul(rec)
	if spec != nil {
		spec = store.ReplaceJSONNul(spec)
	}
	if r.CreatedAt != nil && !r.CreatedAt.IsZero() {
		c := r.CreatedAt.UTC().Truncate(time.Second)
		created = &c
	}
	return rec, spec, created, nil
}

func decodeRollout(id string, rec []byte) (*api.Rollout, error) {
	var r api.Rollout
	if err := json.Unmarshal(rec, &r); err != nil {
		return nil, fmt.Errorf("pgstore: rollout %q: %w: %v", id, store.ErrCorrupt, err)
	}
	return &r, nil
}
