-- Scale: what pruning, ListSessions and ListAuditEvents look rows up by, so
-- none of them scans a table that grows (see the PostgreSQL migrations 0011 to
-- 0018, which build the same indexes one at a time, concurrently).
CREATE INDEX IF NOT EXISTS refresh_tokens_expires_idx ON refresh_tokens (expires_at);
CREATE INDEX IF NOT EXISTS sessions_created_idx ON sessions (created_at);
CREATE INDEX IF NOT EXISTS sessions_last_used_idx ON sessions (last_used_at);
CREATE INDEX IF NOT EXISTS sessions_active_user_idx
    ON sessions (user_id, created_at DESC, id DESC) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS throttle_counters_updated_idx ON throttle_counters (updated_at);
CREATE INDEX IF NOT EXISTS audit_events_actor_idx
    ON audit_events (actor_id, at DESC, id DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_events_subject_idx
    ON audit_events (subject, at DESC, id DESC) WHERE subject IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox_delivered_idx ON outbox (delivered_at)
    WHERE delivered_at IS NOT NULL;
