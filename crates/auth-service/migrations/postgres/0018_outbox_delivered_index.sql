-- no-transaction
-- Pruning finds delivered events by this; pending ones have their own index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_delivered_idx ON outbox (delivered_at)
    WHERE delivered_at IS NOT NULL;
