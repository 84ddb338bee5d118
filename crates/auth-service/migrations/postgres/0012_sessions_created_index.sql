-- no-transaction
-- Pruning finds sessions past their absolute lifetime by this.
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_created_idx ON sessions (created_at);
