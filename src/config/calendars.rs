//! One `[[calendars]]` entry (SPEC §5) and its ordered `[[calendars.map]]` entries: every key
//! checked, every problem recorded with its place, then converted into a [`Calendar`].
//!
//! As for rules, the checks that need the other files (is the token defined, is the name
//! unique among rules and calendars) run in `load` once every file is walked, through
//! [`check_across`]. Nothing here fetches or opens the calendar: a `url_file` is read only
//! by [`Calendar::feed`] (and so by `check` and `run`), with the token files' bounded reader.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use regex::Regex;
use toml::de::DeValue;

use super::address::{self, Address, SecretUrl};
use super::paths::{self, Env};
use super::rules::{self, Named};
use super::token_file::{self, ReadError};
use super::walk::{entry, shown, Ctx, Table, Value};
use super::{Presence, Problem};
use crate::calendar::template::Template;
pub use crate::calendar::Busy;
use crate::calendar::{self, Occurrence, Warning};
use crate::untrusted::escape;

/// Every key a calendar may have.
const CALENDAR_KEYS: &[&str] = &[
    "name",
    "token",
    "user",
    "url",
    "url_file",
    "poll",
    "horizon",
    "email",
    "timezone",
    "respect_manual",
    "restore",
    "map",
];
/// Every key a map entry may have.
const MAP_KEYS: &[&str] = &[
    "summary",
    "busy",
    "all_day",
    "status_text",
    "status_emoji",
    "dnd",
    "presence",
];
/// The keys that make a map entry do something.
const SETTING_KEYS: &[&str] = &["status_text", "status_emoji", "dnd", "presence"];

/// How often a calendar is fetched when `poll` is not given.
const DEFAULT_POLL: Duration = Duration::from_secs(5 * 60);
/// The shortest `poll`: calendar servers throttle clients that ask more often, and a feed
/// changes on the scale of minutes.
const MIN_POLL: Duration = Duration::from_secs(10);
/// How far ahead occurrences are expanded when `horizon` is not given.
const DEFAULT_HORIZON: Duration = Duration::from_secs(14 * 86_400);
/// The longest `horizon`: a year (and a leap day) covers every yearly event once, and
/// bounds the work of expanding a daily rule.
const MAX_HORIZON: Duration = Duration::from_secs(366 * 86_400);

/// One validated calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Unique name across all files, among rules and calendars.
    pub name: String,
    /// Key of [`super::Config::tokens`].
    pub token: String,
    /// Another user's ID to update (admin tokens); `None` updates the token's own profile.
    pub user: Option<String>,
    /// Where the feed is.
    pub source: CalendarSource,
    /// How often it is fetched.
    pub poll: Duration,
    /// How far ahead occurrences are expanded.
    pub horizon: Duration,
    /// Attendee addresses that are "me" (lowercase): events one of them declined are ignored.
    pub email: Vec<String>,
    /// The zone of floating times and all-day events, and of the templates' times.
    pub timezone: Tz,
    /// Leave a status the user set by hand alone.
    pub respect_manual: bool,
    /// Put back the status from before the calendar's when its last status ends.
    pub restore: bool,
    /// The map entries in file order: the first that matches an event wins.
    pub map: Vec<MapEntry>,
    /// The file the calendar is defined in.
    pub file: PathBuf,
}

/// One feed read by [`Calendar::read`].
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRead {
    /// How many events parsed.
    pub events: usize,
    /// The occurrences overlapping the window, sorted as [`calendar::expand`] returns them.
    pub occurrences: Vec<Occurrence>,
    /// What parsing and expanding skipped or read by a fallback, in that order.
    pub warnings: Vec<Warning>,
    /// The window they cover.
    pub window: (DateTime<Utc>, DateTime<Utc>),
}

/// Where a calendar's feed is, as the config says.
#[derive(Debug, Clone)]
pub enum CalendarSource {
    /// `url` with an `https://`, `http://` or `webcal://` address.
    Url(SecretUrl),
    /// `url` with a local file path, made absolute against the folder of the file naming it.
    File(PathBuf),
    /// `url_file`: a file whose first line is the address, read by [`Calendar::feed`].
    UrlFile(UrlFile),
}

/// A `url_file`, resolved like a `token_file`.
#[derive(Debug, Clone)]
pub struct UrlFile {
    /// The file, made absolute (against `$CREDENTIALS_DIRECTORY` when systemd provides one,
    /// else the folder of the config file naming it).
    pub path: PathBuf,
    /// Where `url_file` is written, so a problem reading it points there; its message is the
    /// calendar's label.
    at: Problem,
}

/// Where to read a calendar from, once a `url_file` has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// Fetch over HTTP(S).
    Url(SecretUrl),
    /// Read a local file.
    File(PathBuf),
}

/// A `url_file` that gave no address.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{problem}")]
pub struct UrlFileError {
    /// What is wrong, at the place `url_file` is written; never quotes the file's contents.
    pub problem: Problem,
    /// Whether the file simply does not exist (a warning for `check` from a shell, as for
    /// token files: the service resolves it in its own credentials directory).
    pub not_found: bool,
}

/// The status a map entry sets: both templates (an absent one is empty, as for rules).
#[derive(Debug, Clone, PartialEq)]
pub struct MapStatus {
    /// `status_text`.
    pub text: Template,
    /// `status_emoji`.
    pub emoji: Template,
}

/// One `[[calendars.map]]` entry: which events it matches, and what it sets for them.
#[derive(Debug, Clone)]
pub struct MapEntry {
    /// `summary`: a regex the event's title must match (a private event's title is `Busy`).
    pub summary: Option<Regex>,
    /// `busy`: the states it matches; `None` matches every state.
    pub busy: Option<Vec<Busy>>,
    /// `all_day`: only all-day (`true`) or only timed (`false`) events.
    pub all_day: Option<bool>,
    /// The status to show while a matched event runs.
    pub status: Option<MapStatus>,
    /// `dnd`: snooze notifications (`true`) or end a snooze (`false`).
    pub dnd: Option<bool>,
    /// `presence`.
    pub presence: Option<Presence>,
}

impl MapEntry {
    /// Whether an event with this title (`Busy` for a private one), busy state and kind
    /// matches the entry: every condition it has holds.
    pub fn matches(&self, summary: &str, busy: Busy, all_day: bool) -> bool {
        self.summary.as_ref().is_none_or(|r| r.is_match(summary))
            && self.busy.as_ref().is_none_or(|b| b.contains(&busy))
            && self.all_day.is_none_or(|a| a == all_day)
    }
}

impl Calendar {
    /// How messages name the calendar.
    pub fn label(&self) -> String {
        format!("calendar {:?}", self.name)
    }

    /// The window occurrences are expanded over from `from`: `[from, from + horizon)`.
    pub fn window(&self, from: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        // The horizon is at most a year (checked above), so this cannot overflow.
        let to = TimeDelta::from_std(self.horizon)
            .ok()
            .and_then(|h| from.checked_add_signed(h))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        (from, to)
    }

    /// A feed's occurrences over [`Calendar::window`] from `from`: parsed, then expanded in
    /// the calendar's zone for its `email` addresses, with the warnings of both steps.
    pub fn read(&self, bytes: &[u8], from: DateTime<Utc>) -> FeedRead {
        let (from, to) = self.window(from);
        let parsed = calendar::parse(bytes);
        let expansion = calendar::expand(&parsed.events, from, to, self.timezone, &self.email);
        let mut warnings = parsed.warnings;
        warnings.extend(expansion.warnings);
        FeedRead {
            events: parsed.events.len(),
            occurrences: expansion.occurrences,
            warnings,
            window: (from, to),
        }
    }

    /// A parse or expansion warning for people: the calendar, the line and the event's UID,
    /// the feed's text escaped (a warning never carries a title).
    pub fn describe(&self, w: &Warning) -> String {
        let mut text = self.label();
        if w.line > 0 {
            text.push_str(&format!(": line {}", w.line));
        }
        if let Some(uid) = &w.uid {
            text.push_str(&format!(" (UID {})", escape(uid)));
        }
        text.push_str(&format!(": {}", escape(&w.message)));
        text
    }

    /// Where to read the feed, reading a `url_file` (bounded, like a token file), with a
    /// warning if its address is plain `http://`.
    pub fn feed(&self) -> Result<(Feed, Option<String>), UrlFileError> {
        match &self.source {
            CalendarSource::Url(u) => Ok((Feed::Url(u.clone()), None)),
            CalendarSource::File(p) => Ok((Feed::File(p.clone()), None)),
            CalendarSource::UrlFile(f) => f.read(),
        }
    }
}

impl UrlFile {
    /// The address in the file.
    fn read(&self) -> Result<(Feed, Option<String>), UrlFileError> {
        let label = &self.at.message;
        let fail = |message: String, not_found: bool| UrlFileError {
            problem: Problem {
                message: format!("{label}: url_file {}: {message}", self.path.display()),
                ..self.at.clone()
            },
            not_found,
        };
        let text = token_file::read_token(&self.path).map_err(|e| {
            let not_found = e.is_not_found();
            fail(url_file_reason(e), not_found)
        })?;
        match address::classify(&text) {
            Ok(Address::Remote(u)) => {
                let at = &self.at;
                let warning = u.is_plain_http().then(|| {
                    let warning = plain_http_warning(label, "url_file", &u);
                    format!("{}:{}:{}: {warning}", at.file.display(), at.line, at.col)
                });
                Ok((Feed::Url(u), warning))
            }
            Ok(Address::Local(_)) => Err(fail(
                "the file must hold an https://, http:// or webcal:// address on its first \
                 line, not a file path; for a local calendar file write url = \"PATH\" instead"
                    .into(),
                false,
            )),
            Err(e) => Err(fail(e, false)),
        }
    }
}

/// Why a `url_file` could not be read, in words about calendar addresses.
fn url_file_reason(e: ReadError) -> String {
    match e {
        ReadError::NotFound => {
            "no such file; create it with the calendar's address on its first line, or fix \
             url_file"
                .into()
        }
        ReadError::NotRegular(kind) => {
            format!(
                "it is a {kind}, not a regular file; point url_file at a file holding the address"
            )
        }
        ReadError::TooLarge => format!(
            "it is larger than {} bytes; put only the address in it",
            token_file::MAX_TOKEN_FILE
        ),
        ReadError::NotText => "it is not UTF-8 text; put only the address in it".into(),
        ReadError::Empty => {
            "the file is empty; put the calendar's address on its first line".into()
        }
        other => other.to_string(),
    }
}

/// The warning for an address over plain `http://`, naming only its scheme and host.
fn plain_http_warning(label: &str, key: &str, url: &SecretUrl) -> String {
    format!(
        "{label}: {key} {url} is a plain http:// address, so the secret address and the \
         events travel unencrypted; use https:// (or webcal://) if the server offers it"
    )
}

/// What the walk of one calendar produced.
#[derive(Debug)]
pub(crate) struct CalendarDraft {
    /// How messages name it: `calendar "work"`, or `calendar #2` without a valid name.
    pub label: String,
    /// `name`, if present and valid.
    pub name: Option<Named>,
    /// `token`, if present and valid; checked against `[tokens]` later.
    pub token: Option<Named>,
    /// `timezone`, if given and valid; otherwise the top-level zone applies.
    pub timezone: Option<Tz>,
    /// Everything else, or `None` if any of it was invalid (the problems are recorded).
    pub body: Option<CalendarBody>,
    /// Warnings with their `file:line:col` (plain http, away without restore).
    pub warnings: Vec<String>,
}

/// The validated parts of a calendar that need nothing from other files.
#[derive(Debug)]
pub(crate) struct CalendarBody {
    /// `user`.
    user: Option<String>,
    /// `url` or `url_file`, as written.
    source: RawSource,
    /// `poll`.
    poll: Duration,
    /// `horizon`.
    horizon: Duration,
    /// `email`, lowercase.
    email: Vec<String>,
    /// `respect_manual`.
    respect_manual: bool,
    /// `restore`.
    restore: bool,
    /// The map entries.
    map: Vec<MapEntry>,
}

/// A calendar's address before its file's place is known.
#[derive(Debug)]
enum RawSource {
    /// A URL.
    Url(SecretUrl),
    /// A local file, as written.
    File(String),
    /// `url_file`, as written, and where.
    UrlFile(String, Problem),
}

/// `[[calendars]]`: a list of calendar tables, the first of which is the `first_number`th
/// calendar of the file.
pub(crate) fn list(ctx: &mut Ctx<'_>, v: &Value<'_>, first_number: usize) -> Vec<CalendarDraft> {
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "a list of tables: write [[calendars]] (two brackets) above each calendar";
        ctx.wrong_type("calendars", expected, v.get_ref(), &v.span());
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| calendar(ctx, first_number + i, item))
        .collect()
}

/// Walk the calendar `v`, the `number`th (1-based) in its file.
fn calendar(ctx: &mut Ctx<'_>, number: usize, v: &Value<'_>) -> Option<CalendarDraft> {
    let what = format!("calendar #{number}");
    let t = ctx.table(&what, "a table: write [[calendars]] above each calendar", v)?;
    let span = v.span();
    let name = rules::required(
        ctx,
        t,
        &span,
        &what,
        ("name", "calendar"),
        "a unique name, e.g. name = \"alice-work\"",
    );
    let label = match &name {
        Some(n) => format!("calendar {:?}", n.text),
        None => what,
    };
    let token = rules::required(
        ctx,
        t,
        &span,
        &label,
        ("token", "token"),
        "the name of a [tokens.NAME] table",
    );
    ctx.unknown_keys(t, CALENDAR_KEYS, &label);

    let before = ctx.count();
    let timezone = entry(t, "timezone").and_then(|(_, v)| rules::zone(ctx, &label, v));
    let mut warnings = Vec::new();
    let body = body(ctx, &label, t, &span, &mut warnings);
    let clean = ctx.count() == before;
    Some(CalendarDraft {
        label,
        name,
        token,
        timezone,
        body: body.filter(|_| clean),
        warnings,
    })
}

/// The checks of a calendar that can be made within its own table.
fn body(
    ctx: &mut Ctx<'_>,
    label: &str,
    t: &Table<'_>,
    span: &Range<usize>,
    warnings: &mut Vec<String>,
) -> Option<CalendarBody> {
    let user = t
        .get("user")
        .and_then(|v| ctx.non_empty(&format!("{label}: user"), v))
        .map(|s| s.trim().to_string());
    let source = source(ctx, label, t, span, warnings);
    let poll = t
        .get("poll")
        .and_then(|v| poll(ctx, label, v))
        .unwrap_or(DEFAULT_POLL);
    let horizon = t
        .get("horizon")
        .and_then(|v| horizon(ctx, label, v))
        .unwrap_or(DEFAULT_HORIZON);
    let email = t
        .get("email")
        .and_then(|v| {
            let what = format!("{label}: email");
            rules::one_or_many(ctx, &what, v, |ctx, item| email(ctx, &what, item))
        })
        .unwrap_or_default();
    let flag = |ctx: &mut Ctx<'_>, key: &str| {
        t.get(key)
            .and_then(|v| ctx.boolean(&format!("{label}: {key}"), v))
            .unwrap_or(false)
    };
    let respect_manual = flag(ctx, "respect_manual");
    let restore = flag(ctx, "restore");
    let owner = Owner {
        label,
        has_user: user.is_some(),
        restore,
    };
    let map = map(ctx, &owner, t, span, warnings);
    Some(CalendarBody {
        user,
        source: source?,
        poll,
        horizon,
        email,
        respect_manual,
        restore,
        map,
    })
}

/// `url` or `url_file`: exactly one.
fn source(
    ctx: &mut Ctx<'_>,
    label: &str,
    t: &Table<'_>,
    span: &Range<usize>,
    warnings: &mut Vec<String>,
) -> Option<RawSource> {
    let (key, v) = match (entry(t, "url"), entry(t, "url_file")) {
        (Some(url), Some(file)) => {
            let second = if url.0.span().start < file.0.span().start {
                file.0
            } else {
                url.0
            };
            ctx.error(
                &second.span(),
                format!("{label}: has both url and url_file; keep one of them"),
            );
            return None;
        }
        (Some((_, v)), None) => ("url", v),
        (None, Some((_, v))) => ("url_file", v),
        (None, None) => {
            ctx.error(
                span,
                format!(
                    "{label}: has no address; add url = \"https://...\" (the calendar's secret \
                     iCal address, or a local .ics file) or url_file = \"PATH\" (a file holding \
                     the address)"
                ),
            );
            return None;
        }
    };
    let what = format!("{label}: {key}");
    // Not quoted in any message: the value is a secret address.
    let text = ctx.non_empty(&what, v)?.trim();
    if key == "url_file" {
        return Some(RawSource::UrlFile(
            text.to_string(),
            ctx.problem(&v.span(), label),
        ));
    }
    match address::classify(text) {
        Ok(Address::Remote(u)) => {
            if u.is_plain_http() {
                let at = ctx.location(&v.span());
                warnings.push(format!("{at}: {}", plain_http_warning(label, "url", &u)));
            }
            Some(RawSource::Url(u))
        }
        Ok(Address::Local(path)) => Some(RawSource::File(path)),
        Err(e) => {
            ctx.error(&v.span(), format!("{what}: {e}"));
            None
        }
    }
}

/// `poll`: at least [`MIN_POLL`].
fn poll(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>) -> Option<Duration> {
    let d = ctx.duration(&format!("{label}: poll"), v)?;
    if d < MIN_POLL {
        ctx.error(
            &v.span(),
            format!(
                "{label}: poll is {}; fetch at most every {} (calendar servers throttle \
                 faster clients), e.g. poll = \"5m\"",
                humantime::format_duration(d),
                humantime::format_duration(MIN_POLL)
            ),
        );
        return None;
    }
    Some(d)
}

/// `horizon`: longer than 0, at most [`MAX_HORIZON`].
fn horizon(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>) -> Option<Duration> {
    let d = ctx.duration(&format!("{label}: horizon"), v)?;
    let problem = if d.is_zero() {
        "is 0, which would show no event"
    } else if d > MAX_HORIZON {
        "is longer than 366d"
    } else {
        return Some(d);
    };
    ctx.error(
        &v.span(),
        format!("{label}: horizon {problem}; give 1s to 366d, e.g. horizon = \"14d\""),
    );
    None
}

/// One `email`: `local@domain`, kept lowercase (attendee addresses are compared without case).
fn email(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>) -> Option<String> {
    let s = ctx.string(what, v)?.trim();
    let valid = match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !valid {
        ctx.error(
            &v.span(),
            format!(
                "{what}: {} is not an address of the form local@domain; write the address \
                 the calendar lists you under, e.g. \"alice@example.com\"",
                shown(s)
            ),
        );
        return None;
    }
    Some(s.to_lowercase())
}

/// What the map entries need to know about their calendar.
struct Owner<'a> {
    /// The calendar's label.
    label: &'a str,
    /// Whether it sets another user's status (`user`), which DND and presence cannot.
    has_user: bool,
    /// `restore`.
    restore: bool,
}

/// `[[calendars.map]]`: at least one entry.
fn map(
    ctx: &mut Ctx<'_>,
    owner: &Owner<'_>,
    t: &Table<'_>,
    span: &Range<usize>,
    warnings: &mut Vec<String>,
) -> Vec<MapEntry> {
    let label = owner.label;
    let none = format!(
        "{label}: has no [[calendars.map]] entry, so it would ignore every event; add one \
         below it, e.g. [[calendars.map]] with busy = [\"busy\"] and status_text = \"{{summary}}\""
    );
    let Some(v) = t.get("map") else {
        ctx.error(span, none);
        return Vec::new();
    };
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "a list of tables: write [[calendars.map]] (two brackets) above each entry";
        ctx.wrong_type(&format!("{label}: map"), expected, v.get_ref(), &v.span());
        return Vec::new();
    };
    if items.is_empty() {
        ctx.error(&v.span(), none);
    }
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| map_entry(ctx, owner, i + 1, item, warnings))
        .collect()
}

/// One map entry, the `number`th of its calendar.
fn map_entry(
    ctx: &mut Ctx<'_>,
    owner: &Owner<'_>,
    number: usize,
    v: &Value<'_>,
    warnings: &mut Vec<String>,
) -> Option<MapEntry> {
    let what = format!("{}: map entry #{number}", owner.label);
    let t = ctx.table(
        &what,
        "a table: write [[calendars.map]] above each entry",
        v,
    )?;
    ctx.unknown_keys(t, MAP_KEYS, &what);
    let key = |k: &str| format!("{what}: {k}");

    let summary = t
        .get("summary")
        .and_then(|v| summary(ctx, &key("summary"), v));
    let busy = t.get("busy").and_then(|v| {
        let w = key("busy");
        rules::one_or_many(ctx, &w, v, |ctx, item| busy(ctx, &w, item))
    });
    let all_day = t
        .get("all_day")
        .and_then(|v| ctx.boolean(&key("all_day"), v));
    let text = t.get("status_text");
    let emoji = t.get("status_emoji");
    let text_s = text.and_then(|v| ctx.string(&key("status_text"), v));
    let emoji_s = emoji.and_then(|v| ctx.string(&key("status_emoji"), v));
    rules::half_clear(ctx, &what, (text, text_s), (emoji, emoji_s));
    let text_t = text.and_then(|v| template(ctx, &key("status_text"), v));
    let emoji_t = emoji.and_then(|v| template(ctx, &key("status_emoji"), v));
    let dnd = t.get("dnd").and_then(|v| ctx.boolean(&key("dnd"), v));
    let presence = t
        .get("presence")
        .and_then(|v| presence(ctx, &key("presence"), v));

    for k in ["dnd", "presence"] {
        if let (Some((key_at, _)), true) = (entry(t, k), owner.has_user) {
            ctx.error(
                &key_at.span(),
                format!(
                    "{what}: {k} acts on the token's own user only (Slack's DND and presence \
                     methods take no user), but the calendar sets user; remove {k} here or \
                     user from the calendar"
                ),
            );
        }
    }
    if let (Some(Presence::Away), false) = (presence, owner.restore) {
        if let Some(v) = t.get("presence") {
            warnings.push(format!(
                "{}: {what}: presence = \"away\" without restore = true on the calendar stays \
                 away after the event ends; add restore = true to set it back to auto",
                ctx.location(&v.span())
            ));
        }
    }
    if !SETTING_KEYS.iter().any(|k| t.contains_key(*k)) {
        ctx.error(
            &v.span(),
            format!(
                "{what}: sets nothing; add status_text and/or status_emoji, dnd or presence \
                 (an entry meant to ignore events is not needed: unmatched events are ignored)"
            ),
        );
    }
    let status = (text.is_some() || emoji.is_some()).then(|| MapStatus {
        text: text_t.unwrap_or_default(),
        emoji: emoji_t.unwrap_or_default(),
    });
    Some(MapEntry {
        summary,
        busy,
        all_day,
        status,
        dnd,
        presence,
    })
}

/// `summary`: a regex, with a problem pointing at the place in the pattern.
fn summary(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>) -> Option<Regex> {
    let pattern = ctx.string(what, v)?;
    match Regex::new(pattern) {
        Ok(r) => Some(r),
        Err(e) => {
            let (offset, reason) = regex_problem(pattern, &e);
            ctx.error_inside(
                v,
                offset,
                format!(
                    "{what}: not a valid regex: {reason}; fix the pattern (the regex crate's \
                     syntax; in a \"...\" string write \\\\b for \\b, or use '...')"
                ),
            );
            None
        }
    }
}

/// Where in `pattern` the regex error `e` is (a byte offset) and what it says, in one line.
///
/// The regex crate prints a syntax error as the pattern with a `^` line under the culprit
/// and an `error: …` line; the column of the `^` is read from there. A pattern of several
/// lines, or any other error, points at the start.
fn regex_problem(pattern: &str, e: &regex::Error) -> (usize, String) {
    let regex::Error::Syntax(text) = e else {
        return (0, e.to_string());
    };
    let reason = text
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or("invalid syntax")
        .to_string();
    if pattern.contains('\n') {
        return (0, reason);
    }
    let caret = text.lines().find_map(|l| {
        let t = l.trim_start();
        (!t.is_empty() && t.chars().all(|c| c == '^'))
            .then(|| l.chars().count() - t.chars().count())
    });
    // The pattern is indented by four spaces in the message.
    let offset = caret
        .and_then(|col| col.checked_sub(4))
        .and_then(|col| pattern.char_indices().nth(col).map(|(i, _)| i))
        .unwrap_or(0);
    (offset, reason)
}

/// One `busy` value.
fn busy(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>) -> Option<Busy> {
    let s = ctx.string(what, v)?;
    let parsed = Busy::parse(s);
    if parsed.is_none() {
        ctx.error(
            &v.span(),
            format!(
                "{what}: unknown busy state {}; use \"free\", \"tentative\", \"busy\" or \"oof\"",
                shown(s)
            ),
        );
    }
    parsed
}

/// `presence`: `away` or `auto`.
fn presence(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>) -> Option<Presence> {
    let s = ctx.string(what, v)?;
    match Presence::parse(&s.trim().to_ascii_lowercase()) {
        Some(p) => Some(p),
        None => {
            ctx.error(
                &v.span(),
                format!(
                    "{what}: {} is not a presence; use \"away\" or \"auto\"",
                    shown(s)
                ),
            );
            None
        }
    }
}

/// A `status_text`/`status_emoji` template; each problem points at its place in the string.
fn template(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>) -> Option<Template> {
    let DeValue::String(s) = v.get_ref() else {
        return None; // already reported as a wrong type
    };
    match Template::parse(s) {
        Ok(t) => Some(t),
        Err(errors) => {
            for e in errors {
                ctx.error_inside(v, e.offset, format!("{what}: {}", e.message));
            }
            None
        }
    }
}

/// Report calendar names already used by a rule or an earlier calendar, and tokens that are
/// not defined. `names` holds every rule name with its location, and gets the calendars'.
pub(crate) fn check_across(
    ctx: &mut Ctx<'_>,
    drafts: &[CalendarDraft],
    tokens: &BTreeMap<String, String>,
    names: &mut BTreeMap<String, String>,
) {
    for d in drafts {
        if let Some(name) = &d.name {
            match names.get(&name.text) {
                Some(first) => ctx.error(
                    &name.span,
                    format!(
                        "calendar name {:?} is already used at {first}; rules and calendars \
                         share one set of names across all files, so rename one",
                        name.text
                    ),
                ),
                None => {
                    names.insert(name.text.clone(), ctx.location(&name.span));
                }
            }
        }
        if let Some(token) = &d.token {
            if !tokens.contains_key(&token.text) {
                let msg = super::load::unknown_token(&d.label, &token.text, tokens);
                ctx.error(&token.span, msg);
            }
        }
    }
}

/// A calendar from its draft, which is complete once the config has no problems; relative
/// paths are resolved against the folder of `file`, and `zone` is the top-level zone.
pub(crate) fn finish(d: CalendarDraft, file: &Path, zone: Tz, env: &Env) -> Option<Calendar> {
    let body = d.body?;
    let source = match body.source {
        RawSource::Url(u) => CalendarSource::Url(u),
        RawSource::File(p) => CalendarSource::File(paths::config_dir(file, env).join(p)),
        RawSource::UrlFile(p, at) => CalendarSource::UrlFile(UrlFile {
            path: paths::token_file_path(file, &p, env),
            at,
        }),
    };
    Some(Calendar {
        name: d.name?.text,
        token: d.token?.text,
        user: body.user,
        source,
        poll: body.poll,
        horizon: body.horizon,
        email: body.email,
        timezone: d.timezone.unwrap_or(zone),
        respect_manual: body.respect_manual,
        restore: body.restore,
        map: body.map,
        file: file.to_path_buf(),
    })
}

/// What `check` makes of the calendars' `url_file`s, read from where it runs.
#[derive(Debug, Default)]
pub struct UrlFileCheck {
    /// Files `check` cannot find while `$CREDENTIALS_DIRECTORY` is unset, and plain http
    /// addresses.
    pub warnings: Vec<String>,
    /// Files that are special, unreadable, oversized, empty, or hold no valid address.
    pub errors: Vec<Problem>,
}

/// Read every calendar's `url_file` as `run` will.
pub(crate) fn check_url_files(calendars: &[Calendar]) -> UrlFileCheck {
    let from_shell = paths::credentials_directory().is_none();
    let mut report = UrlFileCheck::default();
    for c in calendars {
        match c.feed() {
            Ok((_, warning)) => report.warnings.extend(warning),
            Err(e) if from_shell && e.not_found => report.warnings.push(format!(
                "{e} ($CREDENTIALS_DIRECTORY is unset, so this is only a warning: the service \
                 resolves url_file in its credentials directory; `run` fails if it is missing \
                 there)"
            )),
            Err(e) => report.errors.push(e.problem),
        }
    }
    report
}
