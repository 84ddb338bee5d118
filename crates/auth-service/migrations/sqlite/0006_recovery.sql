-- Verified email addresses and one-time tokens (email verification, password
-- reset). Only a token's SHA-256 is stored; used_at marks it spent or superseded.
ALTER TABLE identities ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;

CREATE TABLE one_time_tokens (
    token_hash BLOB PRIMARY KEY,
    purpose    TEXT NOT NULL,
    user_id    BLOB NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);
CREATE INDEX one_time_tokens_expires_idx ON one_time_tokens (expires_at);
