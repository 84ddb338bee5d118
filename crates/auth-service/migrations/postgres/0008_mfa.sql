-- Two-factor login with TOTP. A session remembers how it was authenticated
-- (`amr`, space-separated RFC 8176 values) so that a refresh keeps it.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- The secret is sealed with the key-encryption key when one is configured;
-- last_step is the last accepted time step, so a code is accepted once.
CREATE TABLE mfa_totp (
    user_id      UUID PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    secret       BYTEA NOT NULL,
    encrypted    BOOLEAN NOT NULL,
    confirmed_at TIMESTAMPTZ,
    last_step    BIGINT,
    created_at   TIMESTAMPTZ NOT NULL
);

-- Only the SHA-256 of a recovery code is stored.
CREATE TABLE mfa_recovery_codes (
    code_hash BYTEA PRIMARY KEY,
    user_id   UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    used_at   TIMESTAMPTZ
);
CREATE INDEX mfa_recovery_codes_user_idx ON mfa_recovery_codes (user_id);

-- A login that passed its password and waits for its second factor.
-- `credential` is the SHA-256 of the password hash it checked.
CREATE TABLE mfa_challenges (
    challenge_hash BYTEA PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    credential     BYTEA NOT NULL,
    client_address TEXT,
    user_agent     TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ
);
CREATE INDEX mfa_challenges_expires_idx ON mfa_challenges (expires_at);
