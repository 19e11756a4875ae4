-- SPDX-License-Identifier: MIT
-- 0002_firmware: the firmware store and the Device OS catalogue.
-- firmware_images stays content-addressed (sha256 of the whole file) and
-- gains the parsed module header as columns (src/healer/module.h); a
-- Device OS release groups the modules of one version per platform.
-- users.is_admin (0001) is the administrator flag the upload route checks.

ALTER TABLE firmware_images
	ADD COLUMN prefix_offset integer NOT NULL DEFAULT 0,
	ADD COLUMN start_address bigint NOT NULL DEFAULT 0,
	ADD COLUMN end_address bigint NOT NULL DEFAULT 0,
	ADD COLUMN module_flags smallint NOT NULL DEFAULT 0,
	ADD COLUMN dep1_function smallint NOT NULL DEFAULT 0,
	ADD COLUMN dep1_index smallint NOT NULL DEFAULT 0,
	ADD COLUMN dep1_version integer NOT NULL DEFAULT 0,
	ADD COLUMN dep2_function smallint NOT NULL DEFAULT 0,
	ADD COLUMN dep2_index smallint NOT NULL DEFAULT 0,
	ADD COLUMN dep2_version integer NOT NULL DEFAULT 0,
	ADD COLUMN product_id integer,
	ADD COLUMN product_version integer,
	ADD COLUMN module_sha256 bytea
		CHECK (module_sha256 IS NULL OR octet_length(module_sha256) = 32),
	ADD COLUMN crc32 bigint NOT NULL DEFAULT 0,
	ADD COLUMN uploaded_by bigint REFERENCES users (id) ON DELETE SET NULL,
	ADD CONSTRAINT firmware_images_size_key CHECK (size = octet_length(bytes));

-- One Device OS release of one platform: "1.5.2", "2.0.0-rc.3".
CREATE TABLE device_os_releases (
	platform_id integer NOT NULL,
	version text NOT NULL CHECK (version ~ '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?(\+[0-9A-Za-z.]+)?$'),
	prerelease boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (platform_id, version)
);

-- Which images make up a release (a bootloader may be in several).
CREATE TABLE device_os_release_modules (
	platform_id integer NOT NULL,
	version text NOT NULL,
	firmware_sha256 bytea NOT NULL REFERENCES firmware_images (sha256)
		ON DELETE CASCADE,
	PRIMARY KEY (platform_id, version, firmware_sha256),
	FOREIGN KEY (platform_id, version)
		REFERENCES device_os_releases (platform_id, version)
		ON DELETE CASCADE
);
CREATE INDEX device_os_release_modules_sha256_idx
	ON device_os_release_modules (firmware_sha256);
