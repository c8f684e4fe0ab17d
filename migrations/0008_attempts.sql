-- Attempts counted per key in fixed windows (store.Attempts): failed
-- logins per user name and per client address, webhook bodies accepted.
-- Counted in one transaction per attempt, rows locked in key order, so
-- that every server sharing the database sees one count. A row whose
-- window has ended counts from zero at the next attempt; such rows are
-- deleted from time to time.
CREATE TABLE attempts (
    key        text COLLATE "C" PRIMARY KEY,
    n          integer NOT NULL,
    window_end timestamptz NOT NULL
);
CREATE INDEX attempts_window_end ON attempts (window_end);
