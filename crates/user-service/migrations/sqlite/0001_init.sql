-- User profiles, and the outbox of events for the Auth Service.
-- Times are INTEGER microseconds since the Unix epoch, UUIDs 16-byte BLOBs.

CREATE TABLE users (
    id           BLOB PRIMARY KEY,
    email        TEXT NOT NULL,
    username     TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    avatar_url   TEXT NOT NULL DEFAULT '',
    bio          TEXT NOT NULL DEFAULT '',
    locale       TEXT NOT NULL DEFAULT '',
    time_zone    TEXT NOT NULL DEFAULT '',
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER
) STRICT;
CREATE UNIQUE INDEX users_username_key ON users (username) WHERE deleted_at IS NULL;

CREATE TABLE outbox (
    id              BLOB PRIMARY KEY,
    topic           TEXT NOT NULL,
    aggregate_id    BLOB NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    delivered_at    INTEGER,
    last_error      TEXT
) STRICT;
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
