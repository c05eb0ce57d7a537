//! Configuration: the TOML file (and its `config.d/` drop-ins) turned into a validated
//! [`Config`], or into the list of *every* problem found, each with file, line and column.
//!
//! Two phases, as in ripgrep's flags: the text is parsed into spanned TOML values, then one
//! walk over them checks every key and converts it into the typed form below. Nothing here
//! talks to Slack or the database; token *values* are only read by [`Config::resolve_tokens`].
//!
//! # Layout
//!
//! - `load`: reading the main file and `config.d/` drop-ins, checks across files (unique
//!   names, defined tokens), defaults, warnings.
//! - `top`: the walk of one file — TOML syntax, top-level keys, `[limits]`, `[retry]`,
//!   `[tokens.*]`.
//! - `sections`: where a large file may be cut so that its parts are parsed one at a time.
//! - `rules`, `rule_profile`: one `[[rules]]` entry and its `[rules.profile]`.
//! - `calendars`: one `[[calendars]]` entry and its `[[calendars.map]]`; `address`: its URL,
//!   a secret shown only by scheme and host; `string_pos`: places inside a string value.
//! - `walk`: typed reads of spanned values that record a located problem instead of failing.
//!   The small languages inside strings (times, days, dates, durations) are parsed by
//!   `schedule`'s grammar, the one parser of them in the program.
//! - `span`: byte offsets to line and column; `paths`: database and token-file resolution.
//! - `http`: `[http]`, where the metrics and health endpoints listen.
//! - `token_file`: reading a token file, bounded in size and time, regular files only.
//!
//! **Invariant:** no message quotes a token value. Type errors never quote the value, and a
//! key or name that looks like a Slack token is replaced by a placeholder.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;

pub use crate::schedule::Expiry;
use crate::schedule::{DateRange, Schedule};

mod address;
mod calendars;
mod database;
mod http;
mod load;
mod paths;
mod rule_profile;
mod rules;
mod secret;
mod sections;
mod span;
mod string_pos;
mod token_file;
mod top;
mod walk;

pub use address::SecretUrl;
pub use calendars::{
    Busy, Calendar, CalendarSource, Feed, FeedRead, MapEntry, MapStatus, UrlFile, UrlFileCheck,
    UrlFileError,
};
pub use database::{Database, Postgres};
pub use http::Http;
pub use load::{default_config_path, load, load_str};
pub use secret::Secret;
/// The bounded open of a token file, which `feed` reuses for local calendar files.
pub(crate) use token_file::{open_regular, OpenError};
pub use token_file::{read_token, ReadError, MAX_TOKEN_FILE, READ_TIMEOUT};

/// One problem in a config file, located by file, line and column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in, as the user named it (or as found in `config.d/`).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong and what to change; never quotes a token.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Every problem found in a config, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The problems, sorted by file, line and column.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// `[limits]`: the sliding-window limits the throttle enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Updates of one target (token + user) per window.
    pub per_user: u32,
    /// Updates by one token per window.
    pub per_token: u32,
    /// Calls of each Tier 2 method (`dnd.setSnooze`, `dnd.endSnooze`, `users.setPresence`)
    /// by one token per window, each method counted on its own, as Slack counts them.
    pub per_method: u32,
    /// `users.profile.get` calls by one token per window: a budget of their own, so that
    /// reading (for `restore` and `respect_manual`) never starves writing.
    pub per_read: u32,
    /// Requests of one token in flight at once (1–[`Limits::MAX_IN_FLIGHT`]).
    pub in_flight: u32,
    /// Length of the sliding window.
    pub window: Duration,
}

impl Limits {
    /// The defaults, which follow Slack's documented limits; usable in `const` items
    /// (`Limits { per_user: 1, ..Limits::DEFAULT }`).
    pub const DEFAULT: Limits = Limits {
        per_user: 10,
        per_token: 30,
        per_method: 20,
        per_read: 100,
        in_flight: 30,
        window: Duration::from_secs(60),
    };

    /// The largest `in_flight` a config may ask for.
    pub const MAX_IN_FLIGHT: u32 = 64;
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// `[retry]`: how transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a row fails for good (429s do not count).
    pub max_attempts: u32,
    /// Backoff before the second attempt.
    pub initial_backoff: Duration,
    /// Ceiling of the exponential backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Where a named token's value comes from. The value itself is read only when resolving.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An environment variable's name.
    Env(String),
    /// A file whose first line is the token (already made absolute).
    File(PathBuf),
    /// The token written in the config file.
    Inline(Secret),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Env(v) => write!(f, "Env({v:?})"),
            TokenSource::File(p) => write!(f, "File({p:?})"),
            TokenSource::Inline(_) => f.write_str("Inline(<redacted>)"),
        }
    }
}

/// The status a rule sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusTemplate {
    /// `status_text` (empty with `emoji` for `clear_status`).
    pub text: String,
    /// `status_emoji`.
    pub emoji: String,
}

pub use crate::profile::Presence;

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name across all files.
    pub name: String,
    /// Key of [`Config::tokens`].
    pub token: String,
    /// Another user's ID to update (admin tokens); `None` updates the token's own profile.
    pub user: Option<String>,
    /// When it fires.
    pub schedule: Schedule,
    /// The zone firings are computed in (the rule's, else the top-level one).
    pub timezone: Tz,
    /// Local dates on which it does not fire: the rule's and the top-level ones.
    pub skip_dates: Vec<DateRange>,
    /// The status to set, if any (`clear_status` gives empty text and emoji).
    pub status: Option<StatusTemplate>,
    /// Expiry of the status.
    pub expiry: Expiry,
    /// Other profile fields: a standard field name or `fields.<ID>` to its JSON value
    /// (`{"value", "alt"}` for custom fields, a list for tags).
    pub profile: BTreeMap<String, serde_json::Value>,
    /// Leave a status the user set by hand alone.
    pub respect_manual: bool,
    /// `dnd`: `Some(true)` snoozes Do Not Disturb until the expiry (`dnd.setSnooze`),
    /// `Some(false)` ends a snooze (`dnd.endSnooze`). Only on rules without `user`.
    pub dnd: Option<bool>,
    /// `presence`: what `users.setPresence` sets. Only on rules without `user`.
    pub presence: Option<Presence>,
    /// `restore`: at the expiry, put back the status read before this one went out (and
    /// `auto` after `presence = "away"`). Only on rules with an expiry.
    pub restore: bool,
    /// The file the rule was defined in.
    pub file: PathBuf,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main config file.
    pub path: PathBuf,
    /// The files read: the main file, then drop-ins in name order.
    pub files: Vec<PathBuf>,
    /// The queue: an SQLite file, resolved (relative paths against the config's folder;
    /// defaults per SPEC §3), or a PostgreSQL server (SPEC §8).
    pub database: Database,
    /// Default zone for rules that name none.
    pub timezone: Tz,
    /// Base URL of the Web API, without a trailing slash.
    pub api_url: String,
    /// How far back a missed firing is still applied after downtime; zero disables it.
    pub catch_up: Duration,
    /// Finished rows older than this are deleted.
    pub retention: Duration,
    /// Default log filter (`RUST_LOG` overrides it).
    pub log_level: String,
    /// Throttle limits.
    pub limits: Limits,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// `[http]`: the metrics and health endpoints (SPEC §7).
    pub http: Http,
    /// Named tokens, by name.
    pub tokens: BTreeMap<String, TokenSource>,
    /// Rules in file order.
    pub rules: std::sync::Arc<[Rule]>,
    /// Calendars in file order (SPEC §5).
    pub calendars: std::sync::Arc<[Calendar]>,
    /// Warnings that do not stop the config from loading (e.g. an inline token in a readable
    /// file).
    pub warnings: Vec<String>,
}

/// Why a token's value could not be read. Never contains the value.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// The environment variable is unset or empty.
    #[error("token {name:?}: environment variable {var} is not set; export it or use token_file")]
    EnvMissing {
        /// Token name.
        name: String,
        /// Variable name.
        var: String,
    },
    /// The file could not be read, is not a regular file, is too large or is empty.
    #[error(
        "token {}: cannot read token_file {}: {reason}",
        walk::shown(name),
        shown_path(path)
    )]
    File {
        /// Token name.
        name: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: ReadError,
    },
}

/// A path for a message, unless a part of it looks like a token (people paste the token
/// where the file name belongs).
fn shown_path(path: &std::path::Path) -> String {
    let secret = path
        .iter()
        .any(|part| walk::looks_like_token(&part.to_string_lossy()));
    if secret {
        "<hidden: it looks like a Slack token>".to_string()
    } else {
        path.display().to_string()
    }
}

/// What `check` makes of the token files, read from where it runs.
#[derive(Debug, Default)]
pub struct TokenFileCheck {
    /// Files `check` cannot find while `$CREDENTIALS_DIRECTORY` is unset: the service
    /// resolves them in its own credentials directory, so this shell may not see them.
    pub warnings: Vec<String>,
    /// Files that are special, unreadable, oversized or empty: `run` would fail on them too.
    pub errors: Vec<TokenError>,
}

impl Config {
    /// Read every token's value. Returns the tokens that resolved and an error for each that
    /// did not; the caller decides whether a missing token is fatal (it is not in `--dry-run`).
    pub fn resolve_tokens(&self) -> (BTreeMap<String, Secret>, Vec<TokenError>) {
        let mut ok = BTreeMap::new();
        let mut errs = Vec::new();
        for (name, source) in &self.tokens {
            match source.resolve(name) {
                Ok(s) => {
                    ok.insert(name.clone(), s);
                }
                Err(e) => errs.push(e),
            }
        }
        (ok, errs)
    }

    /// Read every `token_file` as `run` will (bounded, see `token_file`), so that `check`
    /// catches a special, unreadable or oversized one before `run` does. Environment
    /// variables are not looked at: the shell `check` runs in need not have the service's.
    pub fn check_token_files(&self) -> TokenFileCheck {
        let from_shell = paths::credentials_directory().is_none();
        let mut report = TokenFileCheck::default();
        for (name, source) in &self.tokens {
            if !matches!(source, TokenSource::File(_)) {
                continue;
            }
            match source.resolve(name) {
                Ok(_) => {}
                Err(e @ TokenError::File { .. }) if from_shell && e.is_not_found() => {
                    report.warnings.push(format!(
                        "{e} ($CREDENTIALS_DIRECTORY is unset, so this is only a warning: \
                         the service resolves token_file in its credentials directory; \
                         `run` fails if it is missing there)"
                    ));
                }
                Err(e) => report.errors.push(e),
            }
        }
        report
    }
}

impl Config {
    /// Read every calendar's `url_file` as `run` will (bounded, like token files), so that
    /// `check` catches a bad one first; a missing one is only a warning from a shell.
    pub fn check_url_files(&self) -> UrlFileCheck {
        calendars::check_url_files(&self.calendars)
    }
}

impl TokenError {
    /// Whether this is a token file that does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, TokenError::File { reason, .. } if reason.is_not_found())
    }
}

impl TokenSource {
    /// Read the token's value.
    pub fn resolve(&self, name: &str) -> Result<Secret, TokenError> {
        match self {
            TokenSource::Inline(s) => Ok(s.clone()),
            TokenSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim().to_string())),
                _ => Err(TokenError::EnvMissing {
                    name: name.into(),
                    var: var.clone(),
                }),
            },
            TokenSource::File(path) => {
                token_file::read_token(path)
                    .map(Secret::new)
                    .map_err(|reason| TokenError::File {
                        name: name.into(),
                        path: path.clone(),
                        reason,
                    })
            }
        }
    }
}
