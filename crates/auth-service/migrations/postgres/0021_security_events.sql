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

-- The newest position pruning deleted: a cursor below it may have missed
-- events (OUT_OF_RANGE), whatever the clocks say.
CREATE TABLE security_event_horizon (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    tx  BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
INSERT INTO security_event_horizon (id, tx, seq) VALUES (1, -1, -1);

-- A deleted user's identity stays, disabled, and cannot be enabled again.
ALTER TABLE identities ADD COLUMN purged_at TIMESTAMPTZ;
-- Until now DisableUser was only ever the deletion of a user.
UPDATE identities SET purged_at = disabled_at WHERE disabled_at IS NOT NULL;

-- Subscribing to the feed, and reading the roles a verifier maps to
-- permissions, are for the identity services' accounts.
UPDATE roles SET permissions = permissions || '["events:subscribe"]'::jsonb
WHERE name = 'identity-service' AND NOT permissions ? 'events:subscribe';
UPDATE roles SET permissions = permissions || '["roles:read"]'::jsonb
WHERE name = 'identity-service' AND NOT permissions ? 'roles:read';

-- A role for services that only follow the feed and verify tokens locally.
INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at)
VALUES ('event-subscriber', 'Services verifying tokens locally: the security-event feed and role definitions',
        '["events:subscribe", "roles:read"]'::jsonb, TRUE, now(), now())
ON CONFLICT (name) DO NOTHING;
