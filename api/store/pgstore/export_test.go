package pgstore

import "context"

// Reconnects reports how often s's listener has reconnected.
func Reconnects(s *Store) int64 { return s.reconnects.Load() }

// PruneKeys runs the clean-up of reconcile_keys now.
func PruneKeys(ctx context.Context, c *Coordinator) error { return c.pruneKeys(ctx) }
