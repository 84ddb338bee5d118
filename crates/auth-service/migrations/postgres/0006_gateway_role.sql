-- The built-in role of API gateways' service accounts: RFC 7662 introspection.
INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at)
VALUES ('gateway', 'API gateways: token introspection', '["tokens:introspect"]'::jsonb, TRUE, now(), now())
ON CONFLICT (name) DO NOTHING;
