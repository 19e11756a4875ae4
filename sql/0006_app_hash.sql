-- SPDX-License-Identifier: MIT
-- The last application hash (the user module's "u" in a Describe) seen
-- from each device. cinderd keeps it in memory while it knows the
-- device; a device seen for the first time since the start, or back
-- after device_cache_linger_s, is compared with this one, so that
-- spark/device/app-hash is published for a change made while cinderd
-- was down or the device was away (src/healer/apphash.h). NULL: no
-- Describe with an application yet.

ALTER TABLE devices ADD COLUMN app_hash text;
