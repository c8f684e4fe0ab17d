-- Rollouts: records written by the control plane, not watched objects, so
-- they are outside objects and events and written without the store's
-- write lock. The record is the whole api.Rollout as JSONB; deployment,
-- revision and created_at are copies of its fields for ListRollouts, which
-- orders by revision, then created_at (whole seconds, NULL oldest), then id.
CREATE TABLE rollouts (
    id         text COLLATE "C" PRIMARY KEY,
    deployment text COLLATE "C" NOT NULL,
    revision   bigint NOT NULL,
    created_at timestamptz,
    record     jsonb NOT NULL
);
CREATE INDEX rollouts_deployment_newest ON rollouts
    (deployment, revision DESC, created_at DESC NULLS LAST, id DESC);

-- Each rollout's append-only log, seq increasing per rollout. Deleting a
-- rollout deletes its log; deleting a deployment deletes neither.
CREATE TABLE rollout_logs (
    rollout_id text COLLATE "C" NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    node       text NOT NULL,
    stream     text NOT NULL,
    time       timestamptz,
    text       text NOT NULL,
    PRIMARY KEY (rollout_id, seq)
);
