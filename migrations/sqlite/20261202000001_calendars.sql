-- Calendar firings (SPEC §5). A row enqueued for a calendar names it, the change it makes
-- (the firing's key: its instant and what it sets, never a private title) and the event's
-- UID; all three are NULL for rules and `slack-statusd set`.
ALTER TABLE updates ADD COLUMN calendar TEXT;
ALTER TABLE updates ADD COLUMN change_key TEXT;
ALTER TABLE updates ADD COLUMN uid TEXT;

CREATE INDEX updates_by_calendar ON updates (calendar, change_key) WHERE calendar IS NOT NULL;

-- Each calendar's last good copy, so that a restart without network still knows today's
-- events: the parsed, expanded occurrences (private titles already dropped), never the raw
-- feed, with the validators of the response that gave them.
CREATE TABLE calendar_copies (
    calendar    TEXT    PRIMARY KEY,
    -- JSON array of calendar::Occurrence.
    occurrences TEXT    NOT NULL,
    -- JSON of feed::Validators.
    validators  TEXT    NOT NULL,
    -- The window the occurrences were expanded over, Unix milliseconds.
    window_from INTEGER NOT NULL,
    window_to   INTEGER NOT NULL,
    fetched_at  INTEGER NOT NULL
);
