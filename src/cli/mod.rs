//! The commands of the `slack-statusd` binary, one file each. `main.rs` parses the arguments,
//! sets up logging and maps a [`CliError`] to an exit code; what a command checks, does and
//! prints lives here, where tests reach it.
//!
//! - `check`: validate the config and say what a reload applies.
//! - `preview`: the next firings of every rule and calendar, as text or JSON lines; with
//!   `--events`, the calendars' expanded occurrences.
//! - `set`: one immediate update, validated as the config validates a rule.
//! - `queue`: list, retry and drop rows; the row's text and JSON line shapes.
//! - `status`: how the daemon stands — its pid, each token, the next firings.
//! - `run`: the daemon's start-up around [`crate::daemon::run`] — signals, tokens, the run
//!   lock, the database, the file watcher.
//!
//! Commands write their output to the `out` they are given (standard output in the binary)
//! and warnings to standard error.

use std::io::{self, Write};
use std::path::Path;

use crate::config::{self, Config, ConfigError, UrlFileError};
use crate::daemon::lock::LockError;
use crate::daemon::DaemonError;
use crate::feed::FeedError;
use crate::queue::{Queue, QueueError};

pub mod args;
mod check;
mod preview;
mod queue;
mod run;
mod set;
mod status;

pub use self::queue::{queue, row_json, row_line, QueueAction};
pub use check::check;
pub use preview::{parse_from, preview, preview_events, upcoming, Firing, Source};

impl From<args::QueueCommand> for QueueAction {
    fn from(c: args::QueueCommand) -> Self {
        match c {
            args::QueueCommand::List => QueueAction::List,
            args::QueueCommand::Failed => QueueAction::Failed,
            args::QueueCommand::Retry { id } => QueueAction::Retry(id),
            args::QueueCommand::Drop { id } => QueueAction::Drop(id),
        }
    }
}
pub use run::run;
pub use set::{set, SetArgs, SetError};
pub use status::status;

/// Why a command failed. `main.rs` maps each to an exit code: invalid config or input 1,
/// runtime failures 2 (SPEC §2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config is invalid (every problem, each with file:line:col).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `set`'s arguments are invalid.
    #[error(transparent)]
    Set(#[from] SetError),
    /// `preview --from` is not an RFC 3339 instant.
    #[error("--from {given:?} is not RFC 3339 ({reason}); write e.g. 2026-11-23T08:00:00+01:00")]
    From {
        /// What was given.
        given: String,
        /// What chrono found wrong with it.
        reason: chrono::ParseError,
    },
    /// `queue retry` named a row that cannot be retried.
    #[error("row {0} does not exist or is pending, in flight or sent; `slack-statusd queue` lists the rows and their states")]
    NotRetryable(i64),
    /// `queue drop` named a row that cannot be dropped.
    #[error("row {0} does not exist or is in flight; `slack-statusd queue` lists the rows and their states")]
    NotDroppable(i64),
    /// The daemon could not start or failed: unreadable tokens (input) or the database.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The queue database failed; the message names it.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Another `run` holds the database, or its lock file cannot be opened.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A calendar's `url_file` gave no address (`preview --events`).
    #[error(transparent)]
    UrlFile(#[from] UrlFileError),
    /// The feed fetcher could not start.
    #[error(transparent)]
    Fetcher(FeedError),
    /// A calendar's feed could not be fetched or read; the message names the calendar and
    /// only the feed's scheme and host (or its file).
    #[error("calendar {calendar:?}: {source}")]
    Feed {
        /// The calendar's name.
        calendar: String,
        /// Why the fetch failed.
        source: FeedError,
    },
    /// The config names a PostgreSQL queue, which this build cannot open yet.
    #[error("database {0}: this build keeps its queue in SQLite only (PostgreSQL, SPEC §8, is not built yet); set database to a file path")]
    NoPostgres(String),
    /// Another I/O failure: writing the output, signal handlers, the dry run's folder.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        source: io::Error,
    },
}

impl CliError {
    /// Whether the user can fix it by changing the config or the arguments (exit 1), as
    /// opposed to a failure of the database or the system (exit 2).
    pub fn is_input(&self) -> bool {
        match self {
            CliError::Config(_)
            | CliError::Set(_)
            | CliError::From { .. }
            | CliError::NotRetryable(_)
            | CliError::NotDroppable(_)
            | CliError::UrlFile(_)
            | CliError::Daemon(DaemonError::Tokens(_)) => true,
            // A `listen` in use or not ours to bind is the system's state, not the config's
            // syntax (SPEC §7: exit 2).
            CliError::Daemon(
                DaemonError::Queue(_) | DaemonError::Fetcher(_) | DaemonError::Listen { .. },
            )
            | CliError::Queue(_)
            | CliError::Lock(_)
            | CliError::Fetcher(_)
            | CliError::Feed { .. }
            | CliError::NoPostgres(_)
            | CliError::Io { .. } => false,
        }
    }
}

/// A failed write of a command's output.
fn output(source: io::Error) -> CliError {
    CliError::Io {
        what: "cannot write the output",
        source,
    }
}

/// Write one line of output.
fn line(out: &mut impl Write, text: impl std::fmt::Display) -> Result<(), CliError> {
    writeln!(out, "{text}").map_err(output)
}

/// Load and validate the config at `path`, printing its warnings to standard error.
pub fn load(path: &Path) -> Result<Config, CliError> {
    let config = config::load(path)?;
    for w in &config.warnings {
        eprintln!("slack-statusd: warning: {w}");
    }
    Ok(config)
}

/// The SQLite file of `config`'s queue.
fn sqlite_file(config: &Config) -> Result<&Path, CliError> {
    config
        .database
        .sqlite()
        .ok_or_else(|| CliError::NoPostgres(config.database.to_string()))
}

/// Open the existing queue of `config` (the CLI never creates one).
async fn open_existing(config: &Config) -> Result<Queue, CliError> {
    let file = sqlite_file(config)?;
    Queue::open(file, false)
        .await
        .map_err(|e| e.at(file).into())
}

/// Close the queue after a command and hand any file SQLite created (`-wal`, `-shm`, as
/// root from a shell) to the database's owner, so the service can still open them.
async fn close(queue: Queue) {
    queue.close().await;
    if let Err(e) = crate::queue::match_owner(queue.path()) {
        eprintln!("slack-statusd: warning: {e}");
    }
}
