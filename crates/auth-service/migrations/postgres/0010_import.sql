-- Identities imported from another system: the id they had there (unique when
-- given) and when they came, so a re-run of an import skips what it brought.
ALTER TABLE identities ADD COLUMN external_id TEXT;
ALTER TABLE identities ADD COLUMN imported_at TIMESTAMPTZ;
CREATE UNIQUE INDEX identities_external_id_key ON identities (external_id)
    WHERE external_id IS NOT NULL;
