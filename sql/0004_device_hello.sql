-- SPDX-License-Identifier: MIT
-- What Device OS 3.0+ says in its extended Hello, the OTA limits of every
-- generation (extended Hello, or the spark/hardware/* events of older
-- devices), the last Goodbye, and the system module version beside its
-- release name.

ALTER TABLE devices
	ADD COLUMN hello_system_version integer,
	ADD COLUMN system_module_version integer,
	ADD COLUMN max_binary_size bigint CHECK (max_binary_size > 0),
	ADD COLUMN ota_chunk_size integer CHECK (ota_chunk_size > 0),
	ADD COLUMN last_goodbye jsonb,
	ADD COLUMN last_goodbye_at timestamptz;

-- Module version 0 used to be shown as release 0.4.0, and unknown numbers
-- as the bare number: both were guesses. They read as unknown until the
-- device describes itself again.
UPDATE devices SET system_version = NULL
	WHERE system_version = '0.4.0' OR system_version ~ '^[0-9]+$';
