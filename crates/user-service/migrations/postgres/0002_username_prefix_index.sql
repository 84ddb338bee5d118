-- no-transaction
-- A username-prefix search reads its page off this index in username order:
-- the "C" collation makes a prefix one range of the index (byte order), which a
-- locale's collation does not. Built CONCURRENTLY (outside a transaction, one
-- statement per migration) so a populated database keeps taking writes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_username_prefix_idx
    ON users ((username COLLATE "C"), id) WHERE deleted_at IS NULL;
