-- no-transaction
-- Pruning finds counters nobody touched for a window by this.
CREATE INDEX CONCURRENTLY IF NOT EXISTS throttle_counters_updated_idx ON throttle_counters (updated_at);
