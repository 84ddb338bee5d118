-- Roles and permissions, service accounts, session metadata, login throttling and
-- the audit log.

CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL,
    builtin     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at) VALUES
    ('admin', 'Every permission', '["*"]', 1, 0, 0),
    ('user', 'Every registered user: read profiles', '["users:read"]', 1, 0, 0),
    ('identity-service', 'The identity services calling each other',
     '["users:read","users:create","users:disable"]', 1, 0, 0);

CREATE TABLE service_accounts (
    id               BLOB PRIMARY KEY,
    name             TEXT NOT NULL,
    client_id        TEXT NOT NULL UNIQUE,
    secret_hash      BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    disabled_at      INTEGER,
    roles_changed_at INTEGER
) STRICT;
CREATE UNIQUE INDEX service_accounts_name_key ON service_accounts (name) WHERE disabled_at IS NULL;

CREATE TABLE subject_roles (
    subject_id BLOB NOT NULL,
    role       TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    PRIMARY KEY (subject_id, role)
) STRICT;
CREATE INDEX subject_roles_role_idx ON subject_roles (role);
INSERT INTO subject_roles (subject_id, role) SELECT user_id, role FROM identity_roles
    WHERE role IN (SELECT name FROM roles);
DROP TABLE identity_roles;

ALTER TABLE identities ADD COLUMN roles_changed_at INTEGER;
CREATE INDEX identities_roles_changed_at_idx ON identities (roles_changed_at)
    WHERE roles_changed_at IS NOT NULL;
CREATE INDEX service_accounts_roles_changed_at_idx ON service_accounts (roles_changed_at)
    WHERE roles_changed_at IS NOT NULL;

ALTER TABLE sessions ADD COLUMN client_address TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;

CREATE TABLE throttle_counters (
    key          TEXT PRIMARY KEY,
    count        INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_events (
    id             BLOB PRIMARY KEY,
    at             INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    actor_id       TEXT,
    subject        TEXT,
    client_address TEXT,
    details        TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX audit_events_at_idx ON audit_events (at DESC, id DESC);
CREATE INDEX audit_events_kind_idx ON audit_events (kind, at DESC);
