//! The walk over one file: the TOML syntax check, the top-level keys, `[limits]`, `[retry]`
//! and `[tokens.*]`; each `[[rules]]` entry is handed to [`super::rules`].

use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;
use toml::de::{DeTable, DeValue};

use super::rules::{self, Named, RuleDraft};
use super::walk::{looks_like_token, shown, Ctx, Table, Value};
use super::{Limits, RetryPolicy, Secret};
use crate::schedule::DateRange;

/// Keys of the main file.
const TOP_KEYS: &[&str] = &[
    "database",
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
];
/// Keys a drop-in may have.
const DROP_IN_KEYS: &[&str] = &["tokens", "rules"];
/// Keys of `[limits]`.
const LIMITS_KEYS: &[&str] = &["per_user", "per_token", "window"];
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
    /// `database` as written (resolved later).
    pub database: Option<String>,
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
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            database: None,
            timezone: None,
            api_url: None,
            catch_up: DEFAULT_CATCH_UP,
            retention: DEFAULT_RETENTION,
            log_level: DEFAULT_LOG_LEVEL.to_string(),
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            skip_dates: Vec::new(),
        }
    }
}

/// A token source as written; a relative `token_file` is resolved once the file's place is
/// known.
pub(crate) enum RawToken {
    /// `token_env`.
    Env(String),
    /// `token_file`, as written.
    File(String),
    /// `token`.
    Inline(Secret),
}

/// One `[tokens.NAME]` table.
pub(crate) struct TokenDraft {
    /// The name, at its key.
    pub name: Named,
    /// Its source, if the table is valid.
    pub source: Option<RawToken>,
}

/// What one file defines.
#[derive(Default)]
pub(crate) struct FileOut {
    /// Top-level settings (main file only).
    pub globals: Option<Globals>,
    /// `[tokens.*]`.
    pub tokens: Vec<TokenDraft>,
    /// `[[rules]]`.
    pub rules: Vec<RuleDraft>,
}

/// Parse and walk one file. `main` is `None` for the main file, or the main file's path
/// for a drop-in (to tell the user where a setting belongs).
pub(crate) fn walk_file(ctx: &mut Ctx<'_>, text: &str, main: Option<&Path>) -> FileOut {
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
    match main {
        None => {
            ctx.unknown_keys(doc, TOP_KEYS, "");
            out.globals = Some(globals(ctx, doc));
        }
        Some(main) => drop_in_keys(ctx, doc, main),
    }
    if let Some(v) = doc.get("tokens") {
        out.tokens = tokens(ctx, v);
    }
    if let Some(v) = doc.get("rules") {
        out.rules = rules_list(ctx, v);
    }
    out
}

/// A drop-in holds only tokens and rules; anything else belongs in the main file.
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
                "unknown key {} in a drop-in; drop-ins may only hold [tokens.NAME] tables and \
                 [[rules]], so {hint}",
                shown(k)
            ),
        );
    }
}

/// The top-level settings of the main file.
fn globals(ctx: &mut Ctx<'_>, doc: &Table<'_>) -> Globals {
    let mut g = Globals::default();
    if let Some(v) = doc.get("database") {
        g.database = ctx.non_empty("database", v).map(str::to_string);
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
    if let Some(s) = doc
        .get("log_level")
        .and_then(|v| ctx.non_empty("log_level", v))
    {
        g.log_level = s.trim().to_string();
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

/// `[limits]`.
fn limits(ctx: &mut Ctx<'_>, v: &Value<'_>) -> Limits {
    let mut l = Limits::default();
    let Some(t) = ctx.table("limits", "a table ([limits])", v) else {
        return l;
    };
    ctx.unknown_keys(t, LIMITS_KEYS, "[limits]");
    if let Some(n) = t
        .get("per_user")
        .and_then(|v| ctx.positive_count("[limits] per_user", v))
    {
        l.per_user = n;
    }
    if let Some(n) = t
        .get("per_token")
        .and_then(|v| ctx.positive_count("[limits] per_token", v))
    {
        l.per_token = n;
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
            let label = format!("token {}", shown(&name));
            TokenDraft {
                source: token_source(ctx, &label, value),
                name: Named {
                    text: name,
                    span: key.span(),
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

/// `[[rules]]`: a list of rule tables.
fn rules_list(ctx: &mut Ctx<'_>, v: &Value<'_>) -> Vec<RuleDraft> {
    let DeValue::Array(items) = v.get_ref() else {
        let expected = "a list of tables: write [[rules]] (two brackets) above each rule";
        ctx.wrong_type("rules", expected, v.get_ref(), &v.span());
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| rules::rule(ctx, i + 1, item))
        .collect()
}
