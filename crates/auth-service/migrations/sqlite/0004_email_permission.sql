-- Email addresses are personal data: reading anyone's needs its own permission,
-- held by the identity services' accounts (admins hold every permission).
UPDATE roles SET permissions = json_insert(permissions, '$[#]', 'users:read_email')
WHERE name = 'identity-service'
  AND NOT EXISTS (SELECT 1 FROM json_each(roles.permissions) WHERE value = 'users:read_email');
