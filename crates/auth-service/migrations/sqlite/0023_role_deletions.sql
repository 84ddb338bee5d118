-- When each deleted role was last deleted. A token issued before then that
-- names the role holds nothing by that name, even once a role of the name is
-- made again. It replaces marking every holder's roles_changed_at on delete:
-- with a role held by a million subjects that was a million-row update and a
-- million-row read for every replica's next role poll. One row per name.
CREATE TABLE role_deletions (
    role       TEXT PRIMARY KEY,
    deleted_at INTEGER NOT NULL
) STRICT;
CREATE INDEX role_deletions_deleted_at_idx ON role_deletions (deleted_at);
