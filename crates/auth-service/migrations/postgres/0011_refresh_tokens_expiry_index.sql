-- no-transaction
-- Scale: every migration from here that indexes an existing table builds the
-- index CONCURRENTLY, so a populated database keeps taking writes; PostgreSQL
-- runs that outside a transaction and one statement at a time, hence one file
-- per index. Pruning finds expired refresh tokens by this, not by a scan.
CREATE INDEX CONCURRENTLY IF NOT EXISTS refresh_tokens_expires_idx ON refresh_tokens (expires_at);
