-- Settings: small values of the control plane by name (store.Settings),
-- such as its SSH identity, which every server sharing the database must
-- agree on. Not objects: never watched, no events, written without the
-- store's write lock. Secrets are sealed (AES-256-GCM, package sealed)
-- before they reach this table; "mint once" is an INSERT … ON CONFLICT DO
-- NOTHING, so of concurrent creators exactly one wins.
CREATE TABLE settings (
    name       text COLLATE "C" PRIMARY KEY,
    value      bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
