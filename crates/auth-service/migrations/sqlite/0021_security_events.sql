-- The security-event feed (OpenID Shared Signals): written in the same
-- transaction as the change it describes. SQLite has one writer at a time, so
-- `seq` is already commit order; `tx` is 0 (PostgreSQL's needs it).
CREATE TABLE security_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tx           INTEGER NOT NULL,
    id           BLOB NOT NULL,
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    session_id   BLOB,
    detail       TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX security_events_position_idx ON security_events (tx, seq);
CREATE INDEX security_events_at_idx ON security_events (at);

-- A deleted user's identity stays, disabled, and cannot be enabled again.
ALTER TABLE identities ADD COLUMN purged_at INTEGER;

-- Subscribing to the feed, and reading the roles a verifier maps to
-- permissions, are for the identity services' accounts.
UPDATE roles SET permissions = json_insert(permissions, '$[#]', 'events:subscribe')
WHERE name = 'identity-service'
  AND NOT EXISTS (SELECT 1 FROM json_each(roles.permissions) WHERE value = 'events:subscribe');
UPDATE roles SET permissions = json_insert(permissions, '$[#]', 'roles:read')
WHERE name = 'identity-service'
  AND NOT EXISTS (SELECT 1 FROM json_each(roles.permissions) WHERE value = 'roles:read');
