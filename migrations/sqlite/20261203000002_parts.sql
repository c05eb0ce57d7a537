-- Do Not Disturb and presence (SPEC §6). A firing is kept as one row per request it makes —
-- the profile, `dnd.*`, `users.setPresence`, in that order of id — so that each part has its
-- own outcome, retry and window and goes out even when another is skipped. Which part a row
-- is follows from its patch; `parent` links a DND or presence row to its firing's first row
-- (NULL on that one), for `queue` to show the firing's parts together.
ALTER TABLE updates ADD COLUMN parent INTEGER;

CREATE INDEX updates_by_parent ON updates (parent) WHERE parent IS NOT NULL;
