-- no-transaction
-- ListAuditEvents involving someone reads the events they did off this index
-- (and those done to them off the next), newest first, page by page.
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_events_actor_idx
    ON audit_events (actor_id, at DESC, id DESC) WHERE actor_id IS NOT NULL;
