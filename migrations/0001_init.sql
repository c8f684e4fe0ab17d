-- Objects (Nodes, Deployments, …): metadata in columns, spec and status as
-- JSONB. Names are compared byte-wise (COLLATE "C") so that List's order is
-- the same in every database locale.
CREATE TABLE objects (
    kind             text COLLATE "C" NOT NULL,
    name             text COLLATE "C" NOT NULL,
    uid              text NOT NULL,
    generation       bigint NOT NULL,
    resource_version bigint NOT NULL,
    labels           jsonb NOT NULL DEFAULT '{}',
    annotations      jsonb NOT NULL DEFAULT '{}',
    spec             jsonb NOT NULL,
    status           jsonb NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Every write takes its resourceVersion from this one sequence, so
-- resource versions are global and increase with commit order (writers
-- hold the store's write lock while allocating them).
CREATE SEQUENCE resource_versions AS bigint;

-- API tokens; only a hash of the secret is kept.
CREATE TABLE tokens (
    name       text COLLATE "C" PRIMARY KEY,
    hash       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

-- The change log behind Watch: one row per committed write, inserted in the
-- writing transaction, read by every server's listener in id order and
-- pruned after a few minutes.
CREATE TABLE events (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL,
    name       text NOT NULL,
    type       text NOT NULL,
    object     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_created_at ON events (created_at);
