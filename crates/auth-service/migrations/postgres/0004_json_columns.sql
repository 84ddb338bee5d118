-- JSON columns hold JSON (decoded strictly: a corrupt value is an error, never
-- "no permissions"), and counters have the same width as on SQLite.
ALTER TABLE roles ALTER COLUMN permissions TYPE JSONB USING permissions::jsonb;
ALTER TABLE audit_events ALTER COLUMN details DROP DEFAULT;
ALTER TABLE audit_events ALTER COLUMN details TYPE JSONB USING details::jsonb;
ALTER TABLE audit_events ALTER COLUMN details SET DEFAULT '{}'::jsonb;
ALTER TABLE throttle_counters ALTER COLUMN count TYPE BIGINT;
