//! The one queue interface, [`Queue`], over its two backends (SPEC §8): SQLite, embedded and
//! the default, and PostgreSQL, which several instances share. Every caller — daemon, CLI,
//! tests — holds a `Queue`; each method runs the backend's own statements (SQLite's in this
//! module's siblings, PostgreSQL's under `postgres/`), and both take the same decisions
//! through the pure parts they share (`batch.rs`, `merge.rs`, `model.rs`).
//!
//! What differs between them is only what several instances need: on PostgreSQL a token's
//! rows are claimed and finished under a lease ([`Queue::take_token`]), which on SQLite — one
//! `run` per file, under the run lock — is always held.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::postgres::PgQueue;
use super::{
    Advance, Batch, CalendarCopy, CalendarFiring, CalendarRow, ChangeWatcher, Claim, Depth, Finish,
    Health, NewUpdate, QueueError, ReadyTarget, RuleMark, ShownRow, SqliteQueue, State, Target,
    TokenSummary, Update, WaitingRestore,
};
use crate::config::Database;
use crate::profile::Status;

/// Handle to the queue, on either backend. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Queue {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqliteQueue),
    Postgres(PgQueue),
}

impl Queue {
    /// Open (and, with `create`, create) the SQLite database at `path` and apply migrations.
    pub async fn open(path: &Path, create: bool) -> Result<Queue, QueueError> {
        Ok(Queue {
            backend: Backend::Sqlite(SqliteQueue::open(path, create).await?),
        })
    }

    /// Open the queue `database` names: an SQLite file (created only with `create`), or a
    /// PostgreSQL server, whose tables are created by whoever connects first.
    pub async fn connect(database: &Database, create: bool) -> Result<Queue, QueueError> {
        match database {
            Database::Sqlite(path) => Queue::open(path, create).await,
            Database::Postgres(config) => Ok(Queue {
                backend: Backend::Postgres(PgQueue::open(config).await?),
            }),
        }
    }

    /// The database as messages name it: the SQLite file, or the server by scheme and host
    /// (never more of its URL).
    pub fn path(&self) -> &Path {
        match &self.backend {
            Backend::Sqlite(q) => q.path(),
            Backend::Postgres(q) => Path::new(q.shown()),
        }
    }

    /// The SQLite file, if the queue is one.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(q) => Some(q.path()),
            Backend::Postgres(_) => None,
        }
    }

    /// The PostgreSQL backend, if the queue is on one.
    pub fn postgres(&self) -> Option<&PgQueue> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(q) => Some(q),
        }
    }

    /// Whether other instances may share this queue, so that a token is worked only under
    /// its lease ([`Queue::take_token`]).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Close the connections. Writes after this fail.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(q) => q.close().await,
            Backend::Postgres(q) => q.close().await,
        }
    }

    /// Give memory the backend cached for a burst of writes back (SQLite's write cache; a
    /// server keeps its own).
    pub async fn release_memory(&self) {
        if let Backend::Sqlite(q) = &self.backend {
            q.release_memory().await;
        }
    }

    /// Whether the database can still be used: [`Health::fatal`] fires once it cannot, and
    /// the daemon exits.
    pub fn health(&self) -> &Arc<Health> {
        match &self.backend {
            Backend::Sqlite(q) => q.health(),
            Backend::Postgres(q) => q.health(),
        }
    }

    /// Take note of an error a caller met (a read, most likely): one that means the database
    /// cannot be used any more makes [`Health::fatal`] fire, as it would for a write.
    pub fn note_error(&self, e: &QueueError) {
        if let Some(reason) = e.fatal_reason() {
            self.health().declare_fatal(reason);
        }
    }

    /// A watcher of commits by other processes (`set`, `queue retry`) to an SQLite file; on
    /// PostgreSQL they notify the listeners instead ([`PgQueue::listen`]).
    pub async fn change_watcher(&self) -> Result<ChangeWatcher, QueueError> {
        match &self.backend {
            Backend::Sqlite(q) => q.change_watcher().await,
            Backend::Postgres(_) => Err(QueueError::NotOnPostgres("change_watcher")),
        }
    }

    /// Take the lease on `token` for this instance (`holder`) for `length`, rescuing rows a
    /// previous holder left in flight. `Some(rescued)` once held, `None` while another
    /// instance holds it. On SQLite the token is always this instance's: `Some(0)`.
    pub async fn take_token(
        &self,
        token: &str,
        holder: &str,
        length: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, QueueError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Some(0)),
            Backend::Postgres(q) => q.take_token(token, holder, length, now).await,
        }
    }

    /// Renew the lease on `token` for another `length`; `false` once it was lost (another
    /// instance took it), after which this instance claims and finishes nothing of it.
    pub async fn renew_token(&self, token: &str, length: Duration) -> Result<bool, QueueError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(true),
            Backend::Postgres(q) => q.renew_token(token, length).await,
        }
    }

    /// Give the lease on `token` up, so that another instance may take it at once.
    pub async fn release_token(&self, token: &str) -> Result<(), QueueError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(q) => q.release_token(token).await,
        }
    }
}

/// Methods whose every argument goes to the backend unchanged: each one's doc is the
/// contract both backends keep (the SQLite method's comment says how it keeps it).
macro_rules! forward {
    ($(
        $(#[$doc:meta])*
        pub async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;
    )*) => {
        impl Queue {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.backend {
                        Backend::Sqlite(q) => q.$name($($arg),*).await,
                        Backend::Postgres(q) => q.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

forward! {
    /// Put rows left `in_flight` by a previous run back to `pending`, their requests logged
    /// as started at their claim; how many. On PostgreSQL a new holder of each token's lease
    /// does this for that token (`take_token`), and this does nothing.
    pub async fn recover_in_flight(&self, now: DateTime<Utc>) -> Result<u64, QueueError>;
    /// [`Queue::recover_in_flight`] for one token (`None`: every token) whose worker stopped.
    pub async fn recover_token_in_flight(&self, token: Option<&str>, now: DateTime<Utc>) -> Result<u64, QueueError>;
    /// Put `held` rows (of `token`, or every token) back to `pending`; how many.
    pub async fn release_held(&self, token: Option<&str>, now: DateTime<Utc>) -> Result<u64, QueueError>;
    /// Fail the pending rows of tokens not in `known`; how many.
    pub async fn fail_removed_tokens(&self, known: &[String], now: DateTime<Utc>) -> Result<u64, QueueError>;
    /// Advance one rule's mark to `until`, enqueueing `firing` with it; the new row's id.
    pub async fn advance_rule(&self, rule: &str, until: DateTime<Utc>, firing: Option<&NewUpdate>, now: DateTime<Utc>) -> Result<Option<i64>, QueueError>;
    /// Advance many rules' marks in one transaction, enqueueing their firings once.
    pub async fn advance_rules(&self, advances: &[Advance], now: DateTime<Utc>) -> Result<Vec<Option<i64>>, QueueError>;
    /// Every rule's mark: how far it was scheduled, and for which version of it.
    pub async fn rule_marks(&self) -> Result<HashMap<String, RuleMark>, QueueError>;
    /// Enqueue one update (`set`, a test); its row's id.
    pub async fn enqueue(&self, update: &NewUpdate, now: DateTime<Utc>) -> Result<i64, QueueError>;
    /// The targets of `token` with pending rows, each with the instant its first may go.
    pub async fn ready_targets(&self, token: &str) -> Result<Vec<ReadyTarget>, QueueError>;
    /// Claim every pending row of `target` for one request, if its first is due at `now`.
    pub async fn claim(&self, target: &Target, now: DateTime<Utc>) -> Result<Claim, QueueError>;
    /// Record how the request for `batch`, started at `started_at`, ended.
    pub async fn finish(&self, batch: &Batch, outcome: &Finish, started_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), QueueError>;
    /// The requests of `token` started since `since`: method, target user and instant.
    pub async fn sends_since(&self, token: &str, since: DateTime<Utc>) -> Result<Vec<(String, Option<String>, DateTime<Utc>)>, QueueError>;
    /// The rows in `states` (every row if empty), in id order.
    pub async fn list(&self, states: &[State]) -> Result<Vec<Update>, QueueError>;
    /// One row.
    pub async fn get(&self, id: i64) -> Result<Option<Update>, QueueError>;
    /// Delete rows finished before `before` and logged requests before `sends_before`.
    pub async fn purge(&self, before: DateTime<Utc>, sends_before: DateTime<Utc>) -> Result<u64, QueueError>;
    /// Put a finished-but-not-sent row (and its unsent parts) back to `pending`.
    pub async fn retry(&self, id: i64, now: DateTime<Utc>) -> Result<bool, QueueError>;
    /// Delete a row that is not in flight.
    pub async fn drop_row(&self, id: i64) -> Result<bool, QueueError>;
    /// How many rows are in `state`.
    pub async fn count(&self, state: State) -> Result<i64, QueueError>;
    /// Hold the pending rows of `token`, whose value Slack refused with `error`.
    pub async fn hold_token(&self, token: &str, error: &str, now: DateTime<Utc>) -> Result<u64, QueueError>;
    /// The status last sent to `target`.
    pub async fn last_sent_status(&self, target: &Target) -> Result<Option<Status>, QueueError>;
    /// Per token: its rows by state and its last request, for `status`.
    pub async fn token_summaries(&self) -> Result<Vec<TokenSummary>, QueueError>;
    /// The tokens with pending rows.
    pub async fn tokens_with_pending(&self) -> Result<Vec<String>, QueueError>;
    /// Supersede the unsent firings of `rules` from their instants on, for `reason`.
    pub async fn rewind_rules(&self, rules: &[(String, DateTime<Utc>)], reason: &'static str, now: DateTime<Utc>) -> Result<(u64, HashMap<String, DateTime<Utc>>), QueueError>;
    /// Per rule, its first firing queued ahead whose instant passed unsent.
    pub async fn unsent_ahead(&self, now: DateTime<Utc>) -> Result<HashMap<String, DateTime<Utc>>, QueueError>;
    /// A calendar's rows that may still change.
    pub async fn calendar_rows(&self, calendar: &str) -> Result<Vec<CalendarRow>, QueueError>;
    /// The calendar's row last shown to `target` at `now`.
    pub async fn calendar_shown(&self, calendar: &str, target: &Target, now: DateTime<Utc>) -> Result<Option<ShownRow>, QueueError>;
    /// Apply a calendar's plan: supersede rows, enqueue firings; the new rows' ids.
    pub async fn apply_calendar(&self, calendar: &str, supersede: Vec<i64>, enqueue: Vec<CalendarFiring>, now: DateTime<Utc>) -> Result<Vec<i64>, QueueError>;
    /// A calendar's last good copy.
    pub async fn calendar_copy(&self, calendar: &str) -> Result<Option<CalendarCopy>, QueueError>;
    /// Store a calendar's good copy.
    pub async fn store_calendar_copy(&self, calendar: &str, copy: &CalendarCopy) -> Result<(), QueueError>;
    /// Supersede the waiting rows of calendars not in `keep`.
    pub async fn supersede_removed_calendars(&self, keep: &[String], now: DateTime<Utc>) -> Result<u64, QueueError>;
    /// Note that a calendar was fetched unchanged at `now`.
    pub async fn touch_calendar_copy(&self, calendar: &str, now: DateTime<Utc>) -> Result<(), QueueError>;
    /// When each calendar was last fetched.
    pub async fn calendar_fetches(&self) -> Result<HashMap<String, DateTime<Utc>>, QueueError>;
    /// Delete the copies of calendars not in `keep`.
    pub async fn drop_calendar_copies_except(&self, keep: &[String]) -> Result<u64, QueueError>;
    /// The restore waiting for `target`'s temporary status, if one is.
    pub async fn waiting_restore(&self, target: &Target) -> Result<Option<WaitingRestore>, QueueError>;
    /// Whether a status was sent to `target` after row `since`.
    pub async fn overtaken_since(&self, target: &Target, since: i64) -> Result<bool, QueueError>;
    /// End `target`'s temporary status now (`set --clear`): its restore row, moved to `now`.
    pub async fn end_temporary_now(&self, target: &Target, now: DateTime<Utc>) -> Result<Option<i64>, QueueError>;
    /// How many rows wait, by state, and how late the oldest due one is.
    pub async fn depth(&self, now: DateTime<Utc>) -> Result<Depth, QueueError>;
}
