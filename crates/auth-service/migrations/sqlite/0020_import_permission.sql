-- Importing users over the admin RPC (ImportIdentities) needs its own
-- permission. `admin` grants it, named even beside `*` so that it stays
-- granted if `*` is ever narrowed to a list.
UPDATE roles SET permissions = json_insert(permissions, '$[#]', 'identities:import')
WHERE name = 'admin'
  AND NOT EXISTS (SELECT 1 FROM json_each(roles.permissions) WHERE value = 'identities:import');
