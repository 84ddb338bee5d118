-- The built-in role of API gateways' service accounts: RFC 7662 introspection.
INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at)
VALUES ('gateway', 'API gateways: token introspection', '["tokens:introspect"]', 1, 0, 0)
ON CONFLICT (name) DO NOTHING;
