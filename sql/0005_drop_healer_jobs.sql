-- SPDX-License-Identifier: MIT
-- healer_jobs (0001) was never used. The healer keeps a heal's state
-- (per-module failures and back-off, the concurrency slot, a refusal)
-- in memory and rebuilds it from the device's next Describe, which is
-- the source of truth for what the device runs; after a restart every
-- device reconnects and describes itself, so a heal resumes where the
-- device is, with fresh retry counts. What must outlive the process is
-- the outcome, which healer_history keeps. See docs/healer.md.

ALTER TABLE healer_history DROP COLUMN job_id;
DROP TABLE healer_jobs;
