-- no-transaction
-- A user's active sessions, newest first, one page at a time: ListSessions
-- reads the page off this index however many sessions the user has.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_active_user_idx
    ON sessions (user_id, created_at DESC, id DESC) WHERE revoked_at IS NULL;
