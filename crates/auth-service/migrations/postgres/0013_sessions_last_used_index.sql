-- no-transaction
-- Pruning finds idle sessions by this.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_last_used_idx ON sessions (last_used_at);
