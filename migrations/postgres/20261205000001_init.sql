-- The queue on PostgreSQL (SPEC §8): the same rows as the SQLite schema in migrations/sqlite
-- (instants as Unix milliseconds, so that both backends share the code that reads them),
-- plus what several instances sharing one database need: a unique key that enqueues a firing
-- once however many instances schedule it, and the leases that let one instance at a time
-- work a token or fetch a calendar. The design is in ARCHITECTURE.md, "Several instances on
-- PostgreSQL".

CREATE TABLE updates (
    id             BIGSERIAL PRIMARY KEY,
    -- The rule that fired; NULL for `set`, a calendar's change or a restore's own rows.
    rule           TEXT,
    -- The token's *name* from the config; the value never reaches the database.
    token          TEXT    NOT NULL,
    -- The user whose profile is set; '' for the token's own profile. (`user` is a reserved
    -- word in PostgreSQL.)
    target_user    TEXT    NOT NULL DEFAULT '',
    -- The firing instant: per target, updates go out in firing order.
    fire_at        BIGINT  NOT NULL,
    -- profile::Patch.
    patch          JSONB   NOT NULL,
    respect_manual BOOLEAN NOT NULL DEFAULT FALSE,
    state          TEXT    NOT NULL CHECK (state IN ('pending', 'in_flight', 'sent', 'failed',
                                   'held', 'skipped', 'superseded', 'expired')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    -- Not sent before this instant: the firing instant, or the end of a retry backoff.
    not_before     BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    -- For a row `in_flight`, when it was claimed: a new holder of the token logs that as the
    -- start of a request the old holder may have sent.
    updated_at     BIGINT  NOT NULL,
    -- When the row reached a final state; retention counts from here.
    finished_at    BIGINT,
    -- A calendar's rows: the calendar, the change they show and the event's UID.
    calendar       TEXT,
    change_key     TEXT,
    uid            TEXT,
    -- A temporary status: put back what it replaced at its end (SPEC §6).
    restore        BOOLEAN NOT NULL DEFAULT FALSE,
    -- A restore row's saved status (restore::SavedRestore).
    saved          JSONB,
    -- A DND or presence part's first row of the firing (NULL on that one).
    parent         BIGINT
);

CREATE INDEX updates_by_target ON updates (token, target_user, state, fire_at, id);
CREATE INDEX updates_by_state ON updates (state, finished_at);
CREATE INDEX updates_by_calendar ON updates (calendar, change_key) WHERE calendar IS NOT NULL;
CREATE INDEX updates_by_parent ON updates (parent) WHERE parent IS NOT NULL;

-- A rule's firing is enqueued once, whichever instance schedules it: the first row of a
-- firing (its parts have a parent, a restore has `saved`) is unique per rule and instant,
-- unless a rewind superseded it so that the rule's new version may take the instant.
CREATE UNIQUE INDEX updates_firing_once ON updates (rule, fire_at)
    WHERE rule IS NOT NULL AND parent IS NULL AND saved IS NULL
      AND NOT (state = 'superseded' AND coalesce(last_error, '') IN ('config_changed', 'missed'));

-- Per rule, the instant up to which firings have been scheduled, and the fingerprint of the
-- rule they were scheduled for.
CREATE TABLE rule_marks (
    rule            TEXT   PRIMARY KEY,
    scheduled_until BIGINT NOT NULL,
    fingerprint     BIGINT
);

-- When each request started: the windows of every instance are this shared log's.
CREATE TABLE sends (
    id          BIGSERIAL PRIMARY KEY,
    token       TEXT   NOT NULL,
    target_user TEXT   NOT NULL,
    method      TEXT   NOT NULL DEFAULT 'users.profile.set',
    started_at  BIGINT NOT NULL
);

CREATE INDEX sends_by_token ON sends (token, started_at);

-- Each calendar's last good copy (parsed occurrences, private titles already replaced).
CREATE TABLE calendar_copies (
    calendar    TEXT   PRIMARY KEY,
    occurrences JSONB  NOT NULL,
    validators  JSONB  NOT NULL,
    window_from BIGINT NOT NULL,
    window_to   BIGINT NOT NULL,
    fetched_at  BIGINT NOT NULL
);

-- Who works what: `token:NAME` or `calendar:NAME`. The expiry is the database's clock, the
-- one clock every instance shares; the epoch rises with every new holder and fences every
-- claim and finish of the old one.
CREATE TABLE leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    epoch      BIGINT      NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- The live instances, for `status` (host, pid and what each holds).
CREATE TABLE instances (
    id         TEXT        PRIMARY KEY,
    host       TEXT        NOT NULL,
    pid        INTEGER     NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    seen_at    TIMESTAMPTZ NOT NULL
);
