package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"bakery.dev/bakery/api/store"
)

// Attempts live in the table attempts (migration 0008). One TakeAttempt is
// one transaction: each key's row is made to exist, then locked (FOR
// UPDATE, keys in sorted order so that two takers never deadlock), read,
// and counted only when no key is at its maximum — so concurrent takers,
// in this process or another server, queue on the rows and at most max of
// them are let through per window.

var _ store.Attempts = (*Store)(nil)

// attemptsSweep is how often ended windows are deleted (and how long
// after their end).
const attemptsSweep = time.Minute

// TakeAttempt implements store.Attempts.
func (s *Store) TakeAttempt(ctx context.Context, keys []string, max int, window time.Duration, now time.Time) (time.Duration, error) {
	if err := store.CheckAttemptKeys(keys, max, window); err != nil {
		return 0, err
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	now = now.UTC()
	s.sweepAttempts(ctx, now)
	var wait time.Duration
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		wait = 0
		for _, k := range keys {
			n, end, err := lockAttempts(ctx, tx, k, now)
			if err != nil {
				return err
			}
			if now.Before(end) && n >= max && end.Sub(now) > wait {
				wait = end.Sub(now)
			}
		}
		if wait > 0 {
			return nil // nothing counted; the rollback of the commit is the same
		}
		_, err := tx.Exec(ctx, `UPDATE attempts SET
			n = CASE WHEN window_end > $2 THEN n + 1 ELSE 1 END,
			window_end = CASE WHEN window_end > $2 THEN window_end ELSE $3 END
			WHERE key = ANY($1)`, keys, now, now.Add(window))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: count attempt: %w", mapErr(err))
	}
	return wait, nil
}

// lockAttempts makes key's row exist, locks it and reads it. A row that
// a sweep deleted between the insert and the lock is inserted again.
func lockAttempts(ctx context.Context, tx pgx.Tx, key string, now time.Time) (n int, end time.Time, err error) {
	for range 3 {
		if _, err = tx.Exec(ctx, `INSERT INTO attempts (key, n, window_end) VALUES ($1, 0, $2) ON CONFLICT (key) DO NOTHING`, key, now); err != nil {
			return 0, time.Time{}, err
		}
		err = tx.QueryRow(ctx, `SELECT n, window_end FROM attempts WHERE key = $1 FOR UPDATE`, key).Scan(&n, &end)
		if !errors.Is(err, pgx.ErrNoRows) {
			return n, end, err
		}
	}
	return 0, time.Time{}, err
}

// sweepAttempts deletes rows whose window has ended, at most once per
// attemptsSweep in this process. A row deleted between a taker's insert
// and its lock is inserted again (lockAttempts).
func (s *Store) sweepAttempts(ctx context.Context, now time.Time) {
	last := s.attemptsSwept.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < attemptsSweep {
		return
	}
	if !s.attemptsSwept.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM attempts WHERE window_end < $1`, now.Add(-attemptsSweep)); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("pgstore: deleting ended attempt windows", "err", err)
	}
}

// ReturnAttempt implements store.Attempts.
func (s *Store) ReturnAttempt(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE attempts SET n = n - 1 WHERE key = $1 AND n > 0`, key); err != nil {
		return fmt.Errorf("pgstore: return attempt: %w", mapErr(err))
	}
	return nil
}

// ResetAttempts implements store.Attempts.
func (s *Store) ResetAttempts(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM attempts WHERE key = $1`, key); err != nil {
		return fmt.Errorf("pgstore: reset attempts: %w", mapErr(err))
	}
	return nil
}
