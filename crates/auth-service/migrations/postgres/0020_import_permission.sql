-- Importing users over the admin RPC (ImportIdentities) needs its own
-- permission. `admin` grants it, named even beside `*` so that it stays
-- granted if `*` is ever narrowed to a list.
UPDATE roles SET permissions = permissions || '["identities:import"]'::jsonb
WHERE name = 'admin' AND NOT permissions ? 'identities:import';
