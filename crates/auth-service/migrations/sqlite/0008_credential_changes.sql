-- The second factor keeps its own failure counter, on the factor itself: a
-- right password never resets it, only a right code does, and it lives as long
-- as the factor (no time window or pruning forgets it).
ALTER TABLE mfa_totp ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mfa_totp ADD COLUMN failed_at INTEGER;

-- A credential change ends the identity's pending challenges in its own
-- transaction: found by user, not by scanning the table.
CREATE INDEX mfa_challenges_user_idx ON mfa_challenges (user_id);

-- Bumped by every credential or address change, in its transaction: what was
-- issued or checked under an older version (a one-time token, a challenge, an
-- enrolment, a login) is refused, however the requests interleave.
ALTER TABLE identities ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mfa_challenges ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;

-- Wrong answers to one login challenge: it dies after a few, so a password
-- holder cannot spray recovery-code guesses from many addresses at one.
ALTER TABLE mfa_challenges ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;

-- An address an account left keeps being reserved while the link that can
-- bring the account back to it lives: found by address, not by scanning.
CREATE INDEX one_time_tokens_cancel_email_idx ON one_time_tokens (email)
    WHERE purpose = 'cancel_email_change';
