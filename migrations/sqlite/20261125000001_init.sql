-- The queue of profile updates. Times are Unix milliseconds (UTC).
CREATE TABLE updates (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The rule that fired; NULL for an update made with `slack-statusd set`.
    rule           TEXT,
    -- The token's *name* from the config; the value never reaches the database.
    token          TEXT    NOT NULL,
    -- The user whose profile is set; '' for the token's own profile.
    user           TEXT    NOT NULL DEFAULT '',
    -- The firing instant: per target, updates go out in (fire_at, id) order.
    fire_at        INTEGER NOT NULL,
    -- JSON of profile::Patch.
    patch          TEXT    NOT NULL,
    respect_manual INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL CHECK (state IN ('pending', 'in_flight', 'sent', 'failed',
                                   'held', 'skipped', 'superseded', 'expired')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    -- Not sent before this instant: the firing instant, or the end of a retry backoff.
    not_before     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- When the row reached a final state; retention counts from here.
    finished_at    INTEGER
);

CREATE INDEX updates_by_target ON updates (token, user, state, fire_at, id);
CREATE INDEX updates_by_state ON updates (state, finished_at);

-- Per rule, the instant up to which firings have been scheduled: a firing at or before it is
-- never enqueued again, across restarts too.
CREATE TABLE rule_marks (
    rule            TEXT    PRIMARY KEY,
    scheduled_until INTEGER NOT NULL
);

-- When each request started, per target: the throttle's sliding windows are rebuilt from this
-- at start, so a restart mid-burst cannot overshoot a limit.
CREATE TABLE sends (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token      TEXT    NOT NULL,
    user       TEXT    NOT NULL,
    started_at INTEGER NOT NULL
);

CREATE INDEX sends_by_token ON sends (token, started_at);
