//! The values the queue stores and hands out: rows, targets, states, claims and outcomes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::{LeaveRestore, MergePlan, SavedRestore};
use crate::profile::Patch;
use crate::throttle::Method;

/// The state of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Waiting to be sent.
    Pending,
    /// Claimed by the worker; a request is (or was, before a crash) on the wire.
    InFlight,
    /// Slack accepted it.
    Sent,
    /// Given up: a permanent error, a dead token, or too many attempts.
    Failed,
    /// Its token failed authentication; waits until a reload changes the token.
    Held,
    /// Not sent because the user set a status by hand (`respect_manual`).
    Skipped,
    /// A newer firing for the same target replaced everything it would set.
    Superseded,
    /// Its status had expired before its turn came.
    Expired,
}

impl State {
    /// All states, in lifecycle order.
    pub const ALL: [State; 8] = [
        State::Pending,
        State::InFlight,
        State::Sent,
        State::Failed,
        State::Held,
        State::Skipped,
        State::Superseded,
        State::Expired,
    ];

    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::InFlight => "in_flight",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Held => "held",
            State::Skipped => "skipped",
            State::Superseded => "superseded",
            State::Expired => "expired",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown state {s:?}"))
    }
}

/// Who an update is for: a token (by name) and a user (`None`: the token's own profile).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// Token name from the config.
    pub token: String,
    /// User ID, or `None` for the token's own profile.
    pub user: Option<String>,
}

impl Target {
    pub(super) fn user_col(&self) -> &str {
        self.user.as_deref().unwrap_or("")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(u) => write!(f, "{}/{}", self.token, u),
            None => write!(f, "{}", self.token),
        }
    }
}

/// A new update to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUpdate {
    /// The rule that fired; `None` for `slack-statusd set`.
    pub rule: Option<String>,
    /// Who it is for.
    pub target: Target,
    /// The firing instant (for `set`, the moment the command ran).
    pub fire_at: DateTime<Utc>,
    /// What it sets.
    pub patch: Patch,
    /// Leave a hand-set status alone.
    pub respect_manual: bool,
    /// The status is temporary: put back what it replaces at its expiry (SPEC §6).
    pub restore: bool,
}

/// Advance one rule's mark, optionally enqueueing a firing (see [`Queue::advance_rules`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    /// The rule's name.
    pub rule: String,
    /// The instant it has now been scheduled up to.
    pub until: DateTime<Utc>,
    /// The fingerprint of the rule it was scheduled with (`None`: leave the stored one).
    pub fingerprint: Option<i64>,
    /// The firing to enqueue, if any.
    pub firing: Option<NewUpdate>,
}

/// A rule's mark, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleMark {
    /// The instant up to which its firings have been enqueued.
    pub until: DateTime<Utc>,
    /// The fingerprint of the rule they were enqueued for (`None`: an older build's mark).
    pub fingerprint: Option<i64>,
}

/// A row of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Row id.
    pub id: i64,
    /// The rule that fired, if any.
    pub rule: Option<String>,
    /// The calendar whose change it is, if any.
    pub calendar: Option<String>,
    /// Who it is for.
    pub target: Target,
    /// The firing instant.
    pub fire_at: DateTime<Utc>,
    /// What it sets.
    pub patch: Patch,
    /// Leave a hand-set status alone.
    pub respect_manual: bool,
    /// The status is temporary (`restore = true`): sending it leaves a restore row.
    pub restore: bool,
    /// For a restore row: what it puts back (see [`Update::is_restore`]).
    pub saved: Option<SavedRestore>,
    /// For a firing's DND or presence row: the firing's first row (see
    /// [`crate::profile::Patch::parts`]).
    pub parent: Option<i64>,
    /// Current state.
    pub state: State,
    /// Attempts that counted against `max_attempts`.
    pub attempts: u32,
    /// The last error (Slack's code, or a transport error).
    pub last_error: Option<String>,
    /// Not sent before this instant.
    pub not_before: DateTime<Utc>,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl Batch {
    /// The method its request calls: `users.profile.set`, or the DND or presence method
    /// of a part's batch.
    pub fn method(&self) -> Method {
        Method::sending(&self.plan.patch)
    }
}

impl Update {
    /// Whether this row is a restore, not a firing: it puts back a saved status.
    pub fn is_restore(&self) -> bool {
        self.saved.is_some()
    }
}

/// A target with pending rows, and when its next row may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyTarget {
    /// The target.
    pub target: Target,
    /// `not_before` of its first pending row in firing order.
    pub ready_at: DateTime<Utc>,
}

/// What [`Queue::claim`] took for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The target's first row is not due yet, or it has no pending rows.
    NotReady,
    /// The rows are `in_flight` but leave nothing to send (all superseded, expired or
    /// unreadable): call [`Queue::finish`] with [`Finish::NotSent`], which finishes them as
    /// the plan says. The claim does not finish them itself so that it stays one round trip.
    NothingToSend(Batch),
    /// The rows are now `in_flight`; send `batch.plan.patch`, then call [`Queue::finish`].
    Send(Batch),
}

/// Rows claimed for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Whose rows.
    pub target: Target,
    /// Every claimed row that could be read, in firing order.
    pub rows: Vec<Update>,
    /// The merged request and each row's fate if it succeeds.
    pub plan: MergePlan,
    /// Claimed rows whose stored patch cannot be read (edited by hand into nonsense), each
    /// with the error to record: every finish fails them, whatever the request's outcome,
    /// so that one bad row never blocks its target.
    pub unreadable: Vec<(i64, String)>,
    /// Claimed rows that wait for a later request: a restore goes alone, after the firings
    /// before it and before those after it. Every finish puts them back to `pending`.
    pub released: Vec<i64>,
    /// A restore batch (its one row is a restore): what it puts back, decided by
    /// [`crate::restore::at_restore`] after a second read.
    pub restore: Option<SavedRestore>,
    /// The restore that the temporary status of this batch leaves, written by a finish
    /// with [`Finish::Sent`] (set by the worker once it has read what the status replaces).
    pub leave_restore: Option<LeaveRestore>,
    /// When each `users.profile.get` made for this batch started: the finish logs them with
    /// the request, so that the read window is rebuilt at start like the others.
    pub reads: Vec<DateTime<Utc>>,
    /// The other parts claimed with it — DND, then presence — each its own request with its
    /// own outcome, sent after this one (`profile::Part`); each is finished on its own.
    pub more: Vec<Batch>,
}

/// How a request ended, as the queue records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Slack accepted it: contributors `sent`, others superseded or expired.
    Sent,
    /// Put the rows back to `pending` without spending an attempt, after their request
    /// started (rate-limited, or abandoned at shutdown): the start is logged.
    Requeue,
    /// Put the rows back to `pending` before any request of theirs started (the token was
    /// paused or died first, shutdown came while they waited for a slot, or a queue error
    /// cut the step short): no start is logged, only the reads made for them.
    PutBack,
    /// A transient failure: spend an attempt; rows that reached `max_attempts` fail, the rest
    /// wait until `retry_at`.
    Retry {
        /// The error to record.
        error: String,
        /// When the rows may go again.
        retry_at: DateTime<Utc>,
        /// Attempts after which a row fails.
        max_attempts: u32,
    },
    /// A permanent failure of these rows.
    Fail {
        /// Slack's error code.
        error: String,
    },
    /// The token is dead: fail these rows and hold every other pending row of the token.
    FailAndHoldToken {
        /// Slack's error code.
        error: String,
    },
    /// No request went out after all (the plan left nothing to send): finish the rows as the
    /// plan says; no request start is logged.
    NotSent,
}

/// One token as the queue sees it (see [`super::Queue::token_summaries`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSummary {
    /// The token's name.
    pub token: String,
    /// Rows waiting to be sent.
    pub pending: i64,
    /// Rows held because the token failed.
    pub held: i64,
    /// Why it is held: the error of its newest held row.
    pub held_why: Option<String>,
    /// Its last finished request, if any.
    pub last: Option<LastSend>,
}

/// The last finished request of a token.
#[derive(Debug, Clone, PartialEq)]
pub struct LastSend {
    /// When it finished.
    pub at: DateTime<Utc>,
    /// `sent` or `failed`.
    pub state: State,
    /// Slack's error, for a failed one.
    pub error: Option<String>,
}
