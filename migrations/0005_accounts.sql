-- Web UI accounts (store.Accounts): users with a password hash (bcrypt)
-- and their logged-in sessions. A session row keeps a hash of the cookie's
-- secret, never the secret. Deleting a user deletes their sessions. Not
-- objects: never watched, no events.
CREATE TABLE users (
    name          text COLLATE "C" PRIMARY KEY,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL
);

CREATE TABLE sessions (
    id         text COLLATE "C" PRIMARY KEY,
    user_name  text COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);
