-- Temporary statuses that put back what was there (SPEC §6 "Restore").
--
-- `restore` marks a firing whose status is temporary: right before it goes out the daemon
-- reads the status it replaces. A *restore row* is the one with `saved` set: JSON of the
-- status to put back, the temporary status it undoes and when that went out (queue::restore).
-- It is due at the temporary status's end, and goes through the queue like any other row.
ALTER TABLE updates ADD COLUMN restore INTEGER NOT NULL DEFAULT 0;
ALTER TABLE updates ADD COLUMN saved TEXT;

-- Which Web API method each logged start was: `users.profile.get` reads and the Tier 2
-- methods have sliding windows of their own, rebuilt from this log like the profile's.
ALTER TABLE sends ADD COLUMN method TEXT NOT NULL DEFAULT 'users.profile.set';
