-- Events for the User Service, written in the same transaction as the change.
CREATE TABLE outbox (
    id              UUID PRIMARY KEY,
    topic           TEXT NOT NULL,
    aggregate_id    UUID NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_until    TIMESTAMPTZ,
    delivered_at    TIMESTAMPTZ,
    last_error      TEXT
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
