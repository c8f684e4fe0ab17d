-- Coordination of several control planes sharing this database (package
-- pgstore, Coordinator). Who reconciles a key is decided by a session-level
-- advisory lock per key (pg_try_advisory_lock(hashtextextended(key, 0))),
-- held on each server's lock connection, whose application_name is
-- 'bakery-lock <server id>'. These tables only make that visible and keep
-- what locks cannot.

-- One row per reconciled key (e.g. 'Deployment/hello'): who holds it now
-- (holder and since, cleared on release; a row whose holder has no lock
-- connection any more is an orphan, picked up by another server) and the
-- last reconcile that finished without error (started on the database's
-- clock, so that servers whose clocks differ still agree).
CREATE TABLE reconcile_keys (
    key          text COLLATE "C" PRIMARY KEY,
    holder       text,
    since        timestamptz,
    done_started timestamptz,
    done_at      timestamptz,
    done_by      text
);
CREATE INDEX reconcile_keys_holder ON reconcile_keys (holder) WHERE holder IS NOT NULL;

-- Ports that rollouts in flight have chosen on a node but not yet recorded
-- in the node's state files, so that two control planes rolling out two
-- apps on one node never pick the same port. Written under
-- pg_advisory_xact_lock of the node; an app's bookings on a node are
-- replaced by its next plan there and dropped when the app is deleted.
CREATE TABLE port_bookings (
    node       text COLLATE "C" NOT NULL,
    port       integer NOT NULL,
    app        text COLLATE "C" NOT NULL,
    booked_by  text NOT NULL,
    booked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node, port)
);
CREATE INDEX port_bookings_app ON port_bookings (app);

-- Periodic jobs that must run once across the cluster per period (event
-- pruning, ...): a server runs a job only when its UPDATE moved next_run
-- forward, which exactly one server per period does.
CREATE TABLE cluster_jobs (
    name        text COLLATE "C" PRIMARY KEY,
    next_run    timestamptz NOT NULL,
    last_run    timestamptz NOT NULL,
    last_server text NOT NULL
);
