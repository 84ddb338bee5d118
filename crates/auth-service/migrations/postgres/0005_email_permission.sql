-- Email addresses are personal data: reading anyone's needs its own permission,
-- held by the identity services' accounts (admins hold every permission).
UPDATE roles SET permissions = permissions || '["users:read_email"]'::jsonb
WHERE name = 'identity-service' AND NOT permissions ? 'users:read_email';
