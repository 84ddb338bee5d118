-- no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_events_subject_idx
    ON audit_events (subject, at DESC, id DESC) WHERE subject IS NOT NULL;
