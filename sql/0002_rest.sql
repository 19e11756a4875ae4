-- SPDX-License-Identifier: MIT
-- 0002_rest: OAuth client rows the REST API needs beyond 0001.
-- `particle token create` (particle-cli 3.x) asks for tokens with the
-- client id "user"; like the other well-known Particle clients it is
-- public (secret_hash NULL: its secret is not checked).
INSERT INTO oauth_clients (client_id, name) VALUES
	('user', 'particle-cli token create')
ON CONFLICT (client_id) DO NOTHING;
