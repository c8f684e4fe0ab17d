package pgstore

// Reconnects reports how often s's listener has reconnected.
func Reconnects(s *Store) int64 { return s.reconnects.Load() }
