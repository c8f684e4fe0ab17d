-- Events (store.Events): what happened to an object, for `bakery describe`
-- and notifications. Records written by the control plane, not watched
-- objects: written without the store's write lock. Not to be confused with
-- the table events, the change log behind Watch. The record is the whole
-- api.Event as JSONB; object and time are copies of its fields (time in
-- whole seconds, NULL when unset) for ListEvents, which orders by time
-- (NULL oldest), then id. Each AddEvent trims its object to the newest
-- store.MaxEventsPerObject events in the same transaction.
CREATE TABLE events_log (
    id     text COLLATE "C" PRIMARY KEY,
    object text COLLATE "C" NOT NULL,
    time   timestamptz,
    record jsonb NOT NULL
);
CREATE INDEX events_log_object_newest ON events_log
    (object, time DESC NULLS LAST, id DESC);
CREATE INDEX events_log_newest ON events_log (time DESC NULLS LAST, id DESC);
