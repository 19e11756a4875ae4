-- SPDX-License-Identifier: MIT
-- Which describe a device's describe columns hold. A device describes
-- itself at every connect, and a fleet mostly says again what its rows
-- already hold; parsing the texts into jsonb and writing them again was
-- more than half of PostgreSQL's work in the presence batch
-- (src/registry_pres.c). The batch names each describe by a key made of
-- its text's SHA-256 and what it writes (docs/database.md), and
-- PostgreSQL parses and writes the texts only where the row holds
-- another key. Only the presence batch writes last_describe, functions,
-- variables and system_modules, and it sets this column with them;
-- anything else that writes them must set it to NULL. NULL means not
-- known: the next describe is written.

ALTER TABLE devices ADD COLUMN describe_key text;
