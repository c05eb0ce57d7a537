//! The walk over one file: the TOML syntax check, the top-level keys, `[limits]`, `[retry]`
//! and `[tokens.*]`; each `[[rules]]` entry is handed to [`super::rules`].

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;
use toml::de::{DeTable, DeValue};

use super::calendars::{self, CalendarDraft};
use super::database::{self, DatabaseValue};
use super::http::{self, Http};
use super::rules::{self, Named, RuleDraft};
use super::sections;
use super::walk::{looks_like_token, shown, Ctx, Table, Value};
use super::{Limits, RetryPolicy, Secret};
use crate::schedule::DateRange;

/// Keys of the main file.
const TOP_KEYS: &[&str] = &[
    "database",
    "database_password_file",
    "lease",
    "timezone",
    "api_url",
    "catch_up",
    "retention",
    "log_level",
    "skip_dates",
    "limits",
    "retry",
    "tokens",
    "rules",
    "calendars",
    "http",
];
/// Keys a drop-in may have.
const DROP_IN_KEYS: &[&str] = &["tokens", "rules", "calendars"];
/// Keys of `[limits]`.
const LIMITS_KEYS: &[&str] = &[
    "per_user",
    "per_token",
    "per_method",
    "per_read",
    "in_flight",
    "window",
];
/// Keys of `[retry]`.
const RETRY_KEYS: &[&str] = &["max_attempts", "initial_backoff", "max_backoff"];
/// The sources of a token; exactly one must be given.
const TOKEN_KEYS: &[&str] = &["token_env", "token_file", "token"];

/// Slack's Web API.
pub(crate) const DEFAULT_API_URL: &str = "https://slack.com/api";
/// How far back a missed firing is still applied by default.
const DEFAULT_CATCH_UP: Duration = Duration::from_secs(6 * 3600);
/// How long finished rows are kept by default.
const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86400);
/// The log filter when the config names none.
const DEFAULT_LOG_LEVEL: &str = "info";

/// The top-level settings of the main file, with defaults for what it leaves out.
#[derive(Debug, Clone)]
pub(crate) struct Globals {
    /// `database` as written (a file is resolved later).
    pub database: Option<DatabaseValue>,
    /// `database_password_file` as written (resolved later, like a `token_file`).
    pub database_password_file: Option<String>,
    /// `lease`.
    pub lease: Option<Duration>,
    /// `timezone`; `None` means the system zone.
    pub timezone: Option<Tz>,
    /// `api_url` without a trailing slash.
    pub api_url: Option<String>,
    /// `catch_up`.
    pub catch_up: Duration,
    /// `retention`.
    pub retention: Duration,
    /// `log_level`.
    pub log_level: String,
    /// `[limits]`.
    pub limits: Limits,
    /// `[retry]`.
    pub retry: RetryPolicy,
    /// Top-level `skip_dates`, which apply to every rule.
    pub skip_dates: Vec<DateRange>,
    /// `[http]`.
    pub http: Http,
    /// Warnings about the settings above, located (`file:line:col: …`).
    pub warnings: Vec<String>,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            database: None,
            database_password_file: None,
            lease: None,
            timezone: None,
            api_url: None,
            catch_up: DEFAULT_CATCH_UP,
            retention: DEFAULT_RETENTION,
            log_level: DEFAULT_LOG_LEVEL.to_string(),
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            skip_dates: Vec::new(),
            http: Http::default(),
            warnings: Vec::new(),
        }
    }
}

/// A token source as written; a relative `token_file` is resolved once the file's place is
/// known.
#[derive(Debug)]
pub(crate) enum RawToken {
    /// `token_env`.
    Env(String),
    /// `token_file`, as written.
    File(String),
    /// `token`.
    Inline(Secret),
}

/// One `[tokens.NAME]` table.
#[derive(Debug)]
pub(crate) struct TokenDraft {
    /// The name, at its key.
    pub name: Named,
    /// Its source, if the table is valid.
    pub source: Option<RawToken>,
}

/// What one file defines.
#[derive(Debug, Default)]
pub(crate) struct FileOut {
    /// Top-level settings (main file only).
    pub globals: Option<Globals>,
    /// `[tokens.*]`.
    pub tokens: Vec<TokenDraft>,
    /// `[[rules]]`.
    pub rules: Vec<RuleDraft>,
    /// `[[calendars]]`.
    pub calendars: Vec<CalendarDraft>,
}

/// Sections shorter than this are not cut off on their own: parsing many tiny pieces costs
/// time (cutting at every header made 10,000 one-token drop-ins load 10% slower), while a
/// section of this size has a parse tree of a few hundred kilobytes.
const SECTION_BYTES: usize = 8 * 1024;

/// Parse and walk one file. `main` is `None` for the main file, or the main file's path
/// for a drop-in (to tell the user where a setting belongs).
pub(crate) fn walk_file(ctx: &mut Ctx<'_>, text: &str, main: Option<&Path>) -> FileOut {
    walk_file_in(ctx, text, main, SECTION_BYTES)
}

/// [`walk_file`] with the minimum section length as a parameter, so that tests can cut
/// small files at every possible place.
fn walk_file_in(ctx: &mut Ctx<'_>, text: &str, main: Option<&Path>, min_len: usize) -> FileOut {
    if let Some(sections) = sections::split(text, min_len) {
        let before = ctx.count();
        if let Some(out) = walk_sections(ctx, text, &sections, main) {
            return out;
        }
        // The pieces do not stand on their own (a syntax error, a cut inside a multi-line
        // string, two pieces that define the same token, ...). The parse of the whole file
        // decides, and reports exactly what it always has.
        ctx.forget_since(before);
    }
    walk_whole(ctx, text, main)
}

/// Parse the whole file at once and walk it.
fn walk_whole(ctx: &mut Ctx<'_>, text: &str, main: Option<&Path>) -> FileOut {
    let mut out = FileOut::default();
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            // Only the parser's own message: the Display of the error quotes the line,
            // which could hold a token.
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().trim_end_matches('.');
            ctx.error(&span, format!("invalid TOML: {msg}; fix the syntax here"));
            return out;
        }
    };
    let doc = doc.get_ref();
    top_level(ctx, doc, main, &mut out);
    if let Some(v) = doc.get("tokens") {
        out.tokens = tokens(ctx, v);
    }
    if let Some(v) = doc.get("rules") {
        out.rules = rules_list(ctx, v, 1);
    }
    if let Some(v) = doc.get("calendars") {
        out.calendars = calendars::list(ctx, v, 1);
    }
    out
}

/// The keys and settings at the top level of a file, other than tokens and rules.
fn top_level(ctx: &mut Ctx<'_>, doc: &Table<'_>, main: Option<&Path>, out: &mut FileOut) {
    match main {
        None => {
            ctx.unknown_keys(doc, TOP_KEYS, "");
            out.globals = Some(globals(ctx, doc));
        }
        Some(main) => drop_in_keys(ctx, doc, main),
    }
}

/// Parse and walk the file one section at a time (see [`sections`]); the tree of only one
/// section exists at any time. `None`, with problems possibly recorded, when a section does
/// not parse on its own or the sections could mean something else together than the whole
/// file: then only the parse of the whole file can tell what the file means.
fn walk_sections(
    ctx: &mut Ctx<'_>,
    text: &str,
    sections: &[Range<usize>],
    main: Option<&Path>,
) -> Option<FileOut> {
    let (first, rest) = sections.split_first()?;
    let mut out = FileOut::default();
    {
        let doc = DeTable::parse(&text[first.clone()]).ok()?;
        let doc = doc.get_ref();
        // Rules or tokens here would be continued by the sections below, which is beyond
        // what they can be checked for; calendars are walked with the whole file.
        if ["rules", "tokens", "calendars"]
            .iter()
            .any(|k| doc.contains_key(*k))
        {
            return None;
        }
        top_level(ctx, doc, main, &mut out);
    }
    // Rules are numbered across the file, as `rule #N` in messages.
    let mut rules_before = 0;
    for section in rest {
        let doc = DeTable::parse(&text[section.clone()]).ok()?;
        let doc = doc.get_ref();
        let mut section_tokens = None;
        let mut section_rules = None;
        for (key, v) in doc.iter() {
            match (key.get_ref().as_ref(), v.get_ref()) {
                // Tables made by [tokens.NAME] headers, which may repeat across sections but
                // not with the same NAME: `sections::split` already gave up on a repeated one.
                ("tokens", DeValue::Table(_)) => section_tokens = Some(v),
                // The array of tables that [[rules]] appends to. A table instead would be a
                // [rules.x] header meant for the previous section's last rule.
                ("rules", DeValue::Array(items)) => section_rules = Some((v, items.len())),
                _ => return None,
            }
        }
        ctx.section(section.start, |ctx| {
            if let Some(v) = section_tokens {
                out.tokens.extend(tokens(ctx, v));
            }
            if let Some((v, count)) = section_rules {
                out.rules.extend(rules_list(ctx, v, rules_before + 1));
                rules_before += count;
            }
        });
    }
    // The order of a parse of the whole file, whose tables are sorted by key.
    out.tokens.sort_by(|a, b| a.name.text.cmp(&b.name.text));
    Some(out)
}

/// A drop-in holds only tokens, rules and calendars; anything else belongs in the main file.
fn drop_in_keys(ctx: &mut Ctx<'_>, doc: &Table<'_>, main: &Path) {
    for key in doc.keys() {
        let k = key.get_ref().as_ref();
        if DROP_IN_KEYS.contains(&k) {
            continue;
        }
        let hint = if TOP_KEYS.contains(&k) {
            format!("move it to {}", main.display())
        } else {
            "remove it".to_string()
        };
        ctx.error(
            &key.span(),
            format!(
                "unknown key {} in a drop-in; drop-ins may only hold [tokens.NAME] tables, \
                 [[rules]] and [[calendars]], so {hint}",
                shown(k)
            ),
        );
    }
}

/// The top-level settings of the main file.
fn globals(ctx: &mut Ctx<'_>, doc: &Table<'_>) -> Globals {
    let mut g = Globals::default();
    if let Some(v) = doc.get("database") {
        if let Some(text) = ctx.non_empty("database", v) {
            match database::classify(text) {
                Ok(d) => g.database = Some(d),
                Err(problem) => ctx.error(&v.span(), format!("database: {problem}")),
            }
        }
    }
    // A `database` already reported leaves the PostgreSQL keys unjudged: whether they belong
    // depends on what it was meant to be.
    let unjudged = doc.get("database").is_some() && g.database.is_none();
    let postgres = matches!(g.database, Some(DatabaseValue::Postgres(_))) || unjudged;
    if let Some(v) = doc.get("database_password_file") {
        if let Some(text) = ctx.non_empty("database_password_file", v) {
            if postgres {
                g.database_password_file = Some(text.to_string());
            } else {
                ctx.error(
                    &v.span(),
                    "database_password_file is for a PostgreSQL database; remove it, or set database to a postgres:// URL",
                );
            }
        }
    }
    if let Some(v) = doc.get("lease") {
        if let Some(lease) = ctx.duration("lease", v) {
            if !postgres {
                ctx.error(
                    &v.span(),
                    "lease is for several instances sharing a PostgreSQL database; remove it, or set database to a postgres:// URL",
                );
            } else if let Some(problem) = database::lease_problem(lease) {
                ctx.error(&v.span(), problem);
            } else {
                g.lease = Some(lease);
            }
        }
    }
    if let Some(v) = doc.get("timezone") {
        g.timezone = rules::zone(ctx, "", v);
    }
    if let Some(v) = doc.get("api_url") {
        g.api_url = api_url(ctx, v);
    }
    if let Some(d) = doc
        .get("catch_up")
        .and_then(|v| ctx.duration("catch_up", v))
    {
        g.catch_up = d;
    }
    if let Some(d) = doc
        .get("retention")
        .and_then(|v| ctx.duration("retention", v))
    {
        g.retention = d;
    }
    if let Some(v) = doc.get("log_level") {
        if let Some(s) = ctx.non_empty("log_level", v) {
            match log_level_problem(s) {
                None => g.log_level = s.trim().to_string(),
                Some(problem) => ctx.error(&v.span(), problem),
            }
        }
    }
    if let Some(v) = doc.get("skip_dates") {
        g.skip_dates = rules::skip_dates(ctx, "skip_dates", v);
    }
    if let Some(v) = doc.get("limits") {
        g.limits = limits(ctx, v);
    }
    if let Some(v) = doc.get("retry") {
        g.retry = retry(ctx, v);
    }
    if let Some(v) = doc.get("http") {
        g.http = http::http(ctx, v, &mut g.warnings);
    }
    g
}

/// `api_url`: an http(s) URL, kept without a trailing slash so paths can be appended.
fn api_url(ctx: &mut Ctx<'_>, v: &Value<'_>) -> Option<String> {
    let url = ctx.non_empty("api_url", v)?.trim();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        // Not quoted: a URL may carry credentials.
        ctx.error(
            &v.span(),
            "api_url must start with http:// or https://, e.g. \"https://slack.com/api\"",
        );
        return None;
    }
    Some(url.trim_end_matches('/').to_string())
}

/// `[limits]`. Every count is at least 1: a limit of 0 would stop a token for good.
fn limits(ctx: &mut Ctx<'_>, v: &Value<'_>) -> Limits {
    let mut l = Limits::default();
    let Some(t) = ctx.table("limits", "a table ([limits])", v) else {
        return l;
    };
    ctx.unknown_keys(t, LIMITS_KEYS, "[limits]");
    let counts: [(&str, &mut u32); 5] = [
        ("per_user", &mut l.per_user),
        ("per_token", &mut l.per_token),
        ("per_method", &mut l.per_method),
        ("per_read", &mut l.per_read),
        ("in_flight", &mut l.in_flight),
    ];
    for (key, field) in counts {
        let what = format!("[limits] {key}");
        if let Some(n) = t.get(key).and_then(|v| ctx.positive_count(&what, v)) {
            *field = n;
        }
    }
    if let Some(v) = t.get("in_flight") {
        if l.in_flight > Limits::MAX_IN_FLIGHT {
            let max = Limits::MAX_IN_FLIGHT;
            ctx.error(
                &v.span(),
                format!(
                    "[limits] in_flight is {}; use 1 to {max} requests in flight per token",
                    l.in_flight
                ),
            );
            l.in_flight = max;
        }
    }
    if let Some(v) = t.get("window") {
        l.window = positive_duration(ctx, "[limits] window", v).unwrap_or(l.window);
    }
    l
}

/// `[retry]`; the backoff may not start above its ceiling.
fn retry(ctx: &mut Ctx<'_>, v: &Value<'_>) -> RetryPolicy {
    let mut r = RetryPolicy::default();
    let Some(t) = ctx.table("retry", "a table ([retry])", v) else {
        return r;
    };
    ctx.unknown_keys(t, RETRY_KEYS, "[retry]");
    if let Some(n) = t
        .get("max_attempts")
        .and_then(|v| ctx.positive_count("[retry] max_attempts", v))
    {
        r.max_attempts = n;
    }
    let initial = t.get("initial_backoff");
    let max = t.get("max_backoff");
    if let Some(d) = initial.and_then(|v| positive_duration(ctx, "[retry] initial_backoff", v)) {
        r.initial_backoff = d;
    }
    if let Some(d) = max.and_then(|v| ctx.duration("[retry] max_backoff", v)) {
        r.max_backoff = d;
    }
    if r.initial_backoff > r.max_backoff {
        // Point at whichever the user wrote; initial_backoff when both.
        if let Some(v) = initial.or(max) {
            ctx.error(
                &v.span(),
                format!(
                    "[retry] initial_backoff ({}) is longer than max_backoff ({}); lower \
                     initial_backoff or raise max_backoff",
                    humantime::format_duration(r.initial_backoff),
                    humantime::format_duration(r.max_backoff)
                ),
            );
        }
    }
    r
}

/// A duration that must be longer than zero.
fn positive_duration(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>) -> Option<Duration> {
    let d = ctx.duration(what, v)?;
    if d.is_zero() {
        ctx.error(
            &v.span(),
            format!("{what} must be longer than 0s, e.g. \"60s\""),
        );
        return None;
    }
    Some(d)
}

/// `[tokens.NAME]` tables.
fn tokens(ctx: &mut Ctx<'_>, v: &Value<'_>) -> Vec<TokenDraft> {
    let expected = "a table of named tokens: write [tokens.NAME]";
    let Some(t) = ctx.table("tokens", expected, v) else {
        return Vec::new();
    };
    t.iter()
        .map(|(key, value)| {
            let name = key.get_ref().to_string();
            ctx.plain_name("token", &name, &key.span());
            let label = format!("token {}", shown(&name));
            TokenDraft {
                source: token_source(ctx, &label, value),
                name: Named {
                    text: name,
                    span: ctx.in_file(key.span()),
                },
            }
        })
        .collect()
}

/// The one source of a token. No message here ever includes a value: the values are
/// tokens, or in a mistyped config may be.
fn token_source(ctx: &mut Ctx<'_>, label: &str, v: &Value<'_>) -> Option<RawToken> {
    let expected = "a table with one of token_env, token_file or token";
    let t = ctx.table(label, expected, v)?;
    ctx.unknown_keys(t, TOKEN_KEYS, label);
    let mut present: Vec<_> = TOKEN_KEYS
        .iter()
        .filter_map(|k| t.get_key_value(*k))
        .collect();
    present.sort_by_key(|(k, _)| k.span().start);
    let (key, value) = match present.as_slice() {
        [] => {
            ctx.error(
                &v.span(),
                format!(
                    "{label}: has no source; add one of token_env = \"VARIABLE\", \
                     token_file = \"PATH\" or token = \"...\""
                ),
            );
            return None;
        }
        [one] => *one,
        [first, second, ..] => {
            ctx.error(
                &second.0.span(),
                format!(
                    "{label}: has both {} and {}; keep exactly one source",
                    first.0.get_ref(),
                    second.0.get_ref()
                ),
            );
            return None;
        }
    };
    let what = format!("{label}: {}", key.get_ref());
    let s = ctx.non_empty(&what, value)?.trim();
    match key.get_ref().as_ref() {
        "token_env" => env_var_name(ctx, &what, value, s).map(RawToken::Env),
        "token_file" if looks_like_token(s) => {
            ctx.error(
                &value.span(),
                format!(
                    "{what} must be a path, but this looks like a Slack token; \
                     write token = \"...\" instead, or put it in a file"
                ),
            );
            None
        }
        "token_file" => Some(RawToken::File(s.to_string())),
        _ => Some(RawToken::Inline(Secret::new(s.to_string()))),
    }
}

/// `token_env`: a plausible variable name. The check also catches a token pasted here,
/// which would otherwise be printed in "variable … is not set".
fn env_var_name(ctx: &mut Ctx<'_>, what: &str, v: &Value<'_>, s: &str) -> Option<String> {
    let valid = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        ctx.error(
            &v.span(),
            format!(
                "{what} must name an environment variable (letters, digits and _, e.g. \
                 \"SLACK_TOKEN_ALICE\"); to write the token itself use token = \"...\""
            ),
        );
        return None;
    }
    Some(s.to_string())
}

/// `[[rules]]`: a list of rule tables, the first of which is the `first_number`th rule of
/// the file.
fn rules_list(ctx: &mut Ctx<'_>, v: &Value<'_>, first_number: usize) -> Vec<RuleDraft> {
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "a list of tables: write [[rules]] (two brackets) above each rule";
        ctx.wrong_type("rules", expected, v.get_ref(), &v.span());
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| rules::rule(ctx, first_number + i, item))
        .collect()
}

/// Why `log_level` would not log what its writer meant, if it would not. tracing's filter
/// takes a bare word it does not know (`infoo`) for a target name, logging nothing else at
/// all — so a typo would silence every error; each directive must be a level, or
/// `target=level`.
fn log_level_problem(text: &str) -> Option<String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level.trim(),
            Some(_) => directive,
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Some(format!(
                "log_level {text:?}: {directive:?} is not a level; write one of trace, debug, \
                 info, warn, error, off, or target=level (e.g. \"info,slack_statusd=debug\")"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn log_levels_are_levels_or_target_directives() {
        for ok in [
            "info",
            "WARN",
            "debug,hyper=warn",
            "slack_statusd=trace",
            " info , hyper=off ",
        ] {
            assert_eq!(log_level_problem(ok), None, "{ok}");
        }
        for bad in ["infoo", "verbose", "info,hyper=loud", "=info"] {
            assert!(log_level_problem(bad).is_some(), "{bad}");
        }
    }

    /// A config whose tokens and rules are spread over many sections: tokens between
    /// rules, sub-tables of rules, and values over several lines.
    const SPREAD: &str = r#"database = "q.db"
timezone = "Europe/Berlin"
[limits]
per_user = 5
[tokens.alice]
token_env = "SLACK_TOKEN_ALICE"
[[rules]]
name = "morning"
token = "alice"
at = ["09:00", "13:30"]
days = "mon-fri"
status_text = "Coffee"
expire_after = "2h"
  [rules.profile]
  title = "Barista"
  [rules.profile.fields.Xf01]
  value = "v"
[tokens.bob]
token_file = "bob.token"
[[rules]] # the evening rule
name = "evening"
token = "bob"
cron = "0 18 * * 1-5"
clear_status = true
[[rules]]
name = "note"
token = "alice"
at = "12:00"
status_text = """
Lunch"""
skip_dates = [
  "2026-12-24",
]
"#;

    /// The walk of `text` cut at every possible header, and the walk of the whole file, as
    /// text: what each found and every problem.
    fn both_ways(text: &str, main: Option<&Path>) -> (String, String) {
        let file = Path::new("c.toml");
        let mut cut = Ctx::new(file, text);
        let cut_out = walk_file_in(&mut cut, text, main, 0);
        let mut whole = Ctx::new(file, text);
        let whole_out = walk_whole(&mut whole, text, main);
        (
            format!("{cut_out:#?}\n{:#?}", cut.take_problems()),
            format!("{whole_out:#?}\n{:#?}", whole.take_problems()),
        )
    }

    /// The problems of the walk of `text` section by section, which must not fall back to
    /// the whole file, as `line:col: message`.
    fn section_problems(text: &str) -> Vec<String> {
        let sections = sections::split(text, 0).expect("the file has sections");
        let mut ctx = Ctx::new(Path::new("c.toml"), text);
        assert!(walk_sections(&mut ctx, text, &sections, None).is_some());
        ctx.take_problems()
            .iter()
            .map(|p| format!("{}:{}: {}", p.line, p.col, p.message))
            .collect()
    }

    #[test]
    fn errors_in_a_later_section_are_located_in_the_file() {
        let rule = |name: &str| {
            format!("[[rules]]\nname = \"{name}\"\ntoken = \"a\"\nat = \"09:00\"\nstatus_text = \"x\"\n")
        };
        let text = format!(
            "[tokens.a]\ntoken_env = \"A\"\n{}{}[[rules]]\ntoken = \"a\"\nat = \"25:00\"\nstatus_text = 5\n",
            rule("one"),
            rule("two")
        );
        assert_eq!(
            section_problems(&text),
            [
                "13:1: rule #3: name is missing; add a unique name, e.g. name = \"coffee\"",
                "15:6: rule #3: at: \"25:00\" is not a time of day: the hour must be 0 to 23 \
                 (midnight is \"00:00\"); write \"HH:MM\" or \"HH:MM:SS\" on the 24-hour clock, \
                 e.g. \"09:00\" or \"17:30:15\"",
                "16:15: rule #3: status_text must be a string (in double quotes), not an integer",
            ]
        );
        // Spans kept for the checks across files point into the file as well.
        let sections = sections::split(&text, 0).unwrap();
        let mut ctx = Ctx::new(Path::new("c.toml"), &text);
        let out = walk_sections(&mut ctx, &text, &sections, None).unwrap();
        let name = out.rules[1].name.as_ref().unwrap();
        assert_eq!(ctx.location(&name.span), "c.toml:9:8");
    }

    #[test]
    fn sections_mean_what_the_whole_file_means() {
        let (cut, whole) = both_ways(SPREAD, None);
        assert_eq!(cut, whole);
        assert_eq!(section_problems(SPREAD), Vec::<String>::new());
        // The example is cut at its headers and each piece stands on its own: without the
        // second check a walk that fell back to the whole file would compare the whole parse
        // with itself. (The install template has no active header, so nothing is cut there;
        // `sections::tests::no_cut_without_rules_or_tokens_headers` covers that case.)
        let example = include_str!("../../config/example.toml");
        let (cut, whole) = both_ways(example, None);
        assert_eq!(cut, whole);
        assert_eq!(section_problems(example), Vec::<String>::new());
    }

    #[test]
    fn a_multi_line_string_holding_header_lines_is_one_value() {
        let text = SPREAD.replace(
            "\nLunch\"\"\"",
            "\n[[rules]]\n[tokens.carol]\n  [x]\n\"\"\"",
        );
        assert_ne!(text, SPREAD);
        let (cut, whole) = both_ways(&text, None);
        assert_eq!(cut, whole);
        assert!(
            cut.contains("\"[[rules]]\\n[tokens.carol]\\n  [x]\\n\""),
            "{cut}"
        );
        assert!(cut.contains("label: \"rule \\\"note\\\"\""), "{cut}");
        assert!(cut.ends_with("\n[]"), "{cut}");
    }

    #[test]
    fn edits_that_make_a_cut_tricky_mean_the_same_cut_or_whole() {
        // Lines that change what the following lines belong to, or break the file.
        let inserts = [
            "[[rules]]",
            "[tokens.alice]",
            "[tokens.dave]",
            "[rules.profile]",
            "[tokens]",
            "[limits]",
            "rules = []",
            "tokens.x.token_env = \"X\"",
            "s = \"\"\"",
            "a = [",
            "name = \"x\"",
        ];
        let lines: Vec<&str> = SPREAD.lines().collect();
        let main = Path::new("main.toml");
        let (mut edits, mut cut_walks) = (0, 0);
        for i in 0..=lines.len() {
            let mut variants = vec![];
            for insert in inserts {
                let mut l = lines.clone();
                l.insert(i, insert);
                variants.push(l.join("\n"));
            }
            if i < lines.len() {
                let mut l = lines.clone();
                l.remove(i);
                variants.push(l.join("\n"));
                let mut l = lines.clone();
                l.insert(i, lines[i]);
                variants.push(l.join("\n"));
            }
            // As the main file and as a drop-in, on alternate lines (both would take twice
            // the time and find little more).
            let main = (i % 2 == 1).then_some(main);
            for text in variants {
                let (cut, whole) = both_ways(&text, main);
                assert_eq!(cut, whole, "in:\n{text}");
                let mut ctx = Ctx::new(main.unwrap_or(Path::new("c.toml")), &text);
                if let Some(sections) = sections::split(&text, 0) {
                    cut_walks +=
                        usize::from(walk_sections(&mut ctx, &text, &sections, main).is_some());
                }
                edits += 1;
            }
        }
        // Many edits keep the file walkable section by section (the others break it or
        // need the whole file), so many comparisons above are of two different walks, not
        // of the whole-file walk with itself.
        assert!(cut_walks * 4 > edits, "{cut_walks} of {edits}");
    }

    #[test]
    fn a_token_defined_in_two_sections_is_reported_as_by_the_parser() {
        let text = "[tokens.a]\ntoken_env = \"A\"\n[[rules]]\nname = \"r\"\n[tokens.a]\n\
                    token_env = \"B\"\n";
        let (cut, whole) = both_ways(text, None);
        assert_eq!(cut, whole);
        assert!(
            cut.contains("line: 5") && cut.contains("invalid TOML: duplicate key"),
            "{cut}"
        );
    }

    #[test]
    fn a_profile_after_a_token_belongs_to_the_rule_before_it() {
        let text = "[tokens.a]\ntoken_env = \"A\"\n[[rules]]\nname = \"r\"\ntoken = \"a\"\n\
                    at = \"09:00\"\n[tokens.b]\ntoken_env = \"B\"\n[rules.profile]\ntitle = \"T\"\n";
        let (cut, whole) = both_ways(text, None);
        assert_eq!(cut, whole);
        // The rule sets its title, and nothing is reported.
        assert!(cut.contains("\"title\": String(\"T\")"), "{cut}");
        assert!(cut.ends_with("\n[]"), "{cut}");
    }
}
