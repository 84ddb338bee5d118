-- Scale: a username or display-name prefix search reads its page off an index
-- in that order (SQLite compares text byte by byte, so a prefix is one range);
-- pruning finds delivered outbox events without a scan.
CREATE INDEX IF NOT EXISTS users_username_prefix_idx ON users (username, id)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS users_display_name_prefix_idx ON users (lower(display_name), id)
    WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_delivered_idx ON outbox (delivered_at)
    WHERE delivered_at IS NOT NULL;
