-- The security-event feed (OpenID Shared Signals): written in the same
-- transaction as the change it describes. `tx` is the writing transaction's id
-- (pg_current_xact_id): readers serve only rows of transactions older than
-- every one still running (pg_snapshot_xmin), in (tx, seq) order, so no row
-- can later appear before a position already served.
CREATE TABLE security_events (
    seq          BIGSERIAL PRIMARY KEY,
    tx           BIGINT NOT NULL,
    id           UUID NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    kind         TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    session_id   UUID,
    detail       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX security_events_position_idx ON security_events (tx, seq);
CREATE INDEX security_events_at_idx ON security_events (at);

-- A deleted user's identity stays, disabled, and cannot be enabled again.
ALTER TABLE identities ADD COLUMN purged_at TIMESTAMPTZ;

-- Subscribing to the feed, and reading the roles a verifier maps to
-- permissions, are for the identity services' accounts.
UPDATE roles SET permissions = permissions || '["events:subscribe"]'::jsonb
WHERE name = 'identity-service' AND NOT permissions ? 'events:subscribe';
UPDATE roles SET permissions = permissions || '["roles:read"]'::jsonb
WHERE name = 'identity-service' AND NOT permissions ? 'roles:read';
