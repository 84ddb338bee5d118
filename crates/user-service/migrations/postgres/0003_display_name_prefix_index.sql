-- no-transaction
-- The same for a display-name prefix, which ignores case.
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_display_name_prefix_idx
    ON users ((lower(display_name) COLLATE "C"), id) WHERE deleted_at IS NULL;
