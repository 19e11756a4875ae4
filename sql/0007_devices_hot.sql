-- SPDX-License-Identifier: MIT
-- A device's row is written at every connect and disconnect (online,
-- last_heard, the Hello's columns: src/registry_pres.c). PostgreSQL can
-- write such an update in place, on the row's own page and without new
-- index entries (a HOT update), only when no indexed column changes and
-- the page has room for the new version. 0001's index on online devices
-- per node had `online` in its predicate, so every connect and every
-- disconnect made new entries in all of the table's indexes, and the
-- table's pages were filled to the last byte.
--
-- The index now covers every device by node (the crash clean-up at
-- start, "UPDATE devices SET online = false WHERE online AND node_id =
-- $1", reads a node's devices and keeps the online ones), and new pages
-- keep 30% free for the next versions of their rows. Pages written
-- before this migration fill up as they were; rows move to roomier
-- pages as they are updated.

DROP INDEX devices_online_idx;
CREATE INDEX devices_node_idx ON devices (node_id);
ALTER TABLE devices SET (fillfactor = 70);
