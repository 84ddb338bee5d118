-- Identities imported from another system: the id they had there (unique when
-- given), when they came and with which run: a re-run of an import skips
-- what an earlier run brought and refuses a duplicate within the same run.
ALTER TABLE identities ADD COLUMN external_id TEXT;
ALTER TABLE identities ADD COLUMN imported_at TIMESTAMPTZ;
ALTER TABLE identities ADD COLUMN import_run UUID;
CREATE UNIQUE INDEX identities_external_id_key ON identities (external_id)
    WHERE external_id IS NOT NULL;
