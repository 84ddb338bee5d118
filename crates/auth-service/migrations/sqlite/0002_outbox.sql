-- Events for the User Service, written in the same transaction as the change.
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
