-- Firings are enqueued a little ahead of their instant (SPEC §4, the scheduler's `AHEAD`).
-- Each mark keeps a fingerprint of the rule it was scheduled with, so that a start or reload
-- that finds the rule changed (or gone) supersedes the rows enqueued ahead for the old version
-- and schedules the new one from now. NULL: written by a build that never enqueued ahead.
ALTER TABLE rule_marks ADD COLUMN fingerprint INTEGER;
