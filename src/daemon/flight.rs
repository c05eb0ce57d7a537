//! One flight: the requests of one claimed batch of one target, from the claim to the last
//! recorded outcome — read the profile if something depends on it, set it, then DND, then
//! presence.
//!
//! A token's worker runs up to `[limits] in_flight` flights at once, each on its own task and
//! for a distinct target (SPEC §4). What they share is the token's [`Gate`]: its windows and
//! whether it is paused or dead. Every request takes its slot there at the moment it starts
//! (decide and record under one lock), so no interleaving of flights can put more starts in a
//! window than the limits allow, and a 429 seen by one flight stops the others' next starts.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::RetryPolicy;
use crate::observe::Metrics;
use crate::profile::Status;
use crate::queue::{Batch, Claim, Finish, LeaveRestore, Queue, QueueError, Target, Update};
use crate::restore::{self, AtRestore};
use crate::slack::manual::{is_manual, shown_status};
use crate::slack::{Outcome, PartOutcome};
use crate::throttle::{backoff, Method, TokenLimiter};

use super::sender::Sender;

/// How long a request in flight may still take once shutdown has begun; after that it is
/// abandoned and its rows go back to `pending`.
pub const DRAIN: Duration = Duration::from_secs(3);

/// How long a flight waits before it tries again to record an outcome the database refused.
const RECORD_RETRY: Duration = Duration::from_secs(1);

/// What the flights of one token share with each other and with their worker.
#[derive(Debug)]
pub(super) struct Token {
    /// The token's name, as rows refer to it.
    pub name: String,
    /// Where requests go.
    pub sender: Sender,
    /// The queue.
    pub queue: Queue,
    /// The wall clock.
    pub clock: Clock,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// Where requests, their delays and the queue's health are counted (SPEC §7).
    pub metrics: Metrics,
    /// The token's windows and pause state.
    pub gate: Mutex<Gate>,
    /// Told when a reservation the worker waits on ([`Gate::wants_room`]) is given up: a
    /// flight took its slot, or will never take one.
    pub room_freed: Notify,
}

impl Token {
    /// The gate, locked. Never held across an `.await`: every decision under it is
    /// immediate.
    pub fn gate(&self) -> MutexGuard<'_, Gate> {
        // A flight that panicked while holding it left plain data, still usable.
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The token's shared throttle state.
#[derive(Debug)]
pub(super) struct Gate {
    /// Sliding windows for the token and its targets.
    pub limiter: TokenLimiter,
    /// No request for this token before this instant (`Retry-After`, or backoff after a 429
    /// without one).
    pub paused_until: Option<DateTime<Utc>>,
    /// 429s in a row without a usable `Retry-After`, for their backoff.
    pub blind_429s: u32,
    /// The token failed authentication with this code: its rows are held until a reload
    /// changes it.
    pub dead: Option<String>,
    /// Flights launched that have not yet started their profile set (or ended without one):
    /// the worker counts them against the room in the token's window, so that it does not
    /// claim targets that would only wait for a slot.
    pub reserved: usize,
    /// The worker stopped launching because every free slot was reserved: the next
    /// reservation given up tells it through [`Token::room_freed`], so that a slot freed by
    /// the sliding window is used at once rather than at the next landing, a round trip on.
    pub wants_room: bool,
}

impl Gate {
    /// Whether no new request may start at `now`.
    fn stopped(&self, now: DateTime<Utc>) -> bool {
        self.dead.is_some() || self.paused_until.is_some_and(|u| u > now)
    }
}

/// One flight: a target's claim and its requests.
pub(super) struct Flight {
    token: Arc<Token>,
    target: Target,
    /// Still counted in [`Gate::reserved`].
    reserved: bool,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.unreserve();
    }
}

impl Flight {
    /// A flight for `target`, counted in the gate's reservations until its profile set starts.
    pub fn launch(token: Arc<Token>, target: Target) -> Flight {
        token.gate().reserved += 1;
        Flight {
            token,
            target,
            reserved: true,
        }
    }

    /// Claim the target's due rows and send them.
    pub async fn fly(mut self, shutdown: CancellationToken) -> Result<(), QueueError> {
        let now = self.token.clock.now();
        match self.token.queue.claim(&self.target, now).await? {
            Claim::NotReady => Ok(()),
            // With nothing to send, `process` finishes every part as its plan says.
            Claim::NothingToSend(batch) | Claim::Send(batch) => {
                self.process(batch, &shutdown).await
            }
        }
    }

    fn unreserve(&mut self) {
        if std::mem::take(&mut self.reserved) {
            let mut gate = self.token.gate();
            gate.reserved = gate.reserved.saturating_sub(1);
            if std::mem::take(&mut gate.wants_room) {
                self.token.room_freed.notify_one();
            }
        }
    }

    /// Send one claimed batch — its profile part, then DND, then presence, each its own
    /// request with its own outcome — and record each outcome. A part whose turn comes while
    /// the token is paused or dead goes back to `pending` (a dead token's are held next).
    async fn process(
        &mut self,
        mut batch: Batch,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        let parts = std::mem::take(&mut batch.more);
        let mut result = if batch.plan.patch.is_empty() {
            let done = self
                .record(&batch, &Finish::NotSent, self.token.clock.now(), shutdown)
                .await;
            log_unsent(&self.target, &batch.plan.superseded, &batch.plan.expired);
            done
        } else {
            self.process_profile(batch, shutdown).await
        };
        for part in parts {
            result = match result {
                // Claimed rows are never left behind: after an error they go back.
                Err(e) => {
                    let now = self.token.clock.now();
                    let _ = self.record(&part, &Finish::PutBack, now, shutdown).await;
                    Err(e)
                }
                Ok(()) => self.process_part(part, shutdown).await,
            };
        }
        result
    }

    /// Send one DND or presence part (the newest due of its group) through the token's
    /// window for its method, and record its outcome: `missing_scope` fails the part alone,
    /// `snooze_not_active` is done, anything else as for a profile update.
    async fn process_part(
        &mut self,
        batch: Batch,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        let now = self.token.clock.now();
        if batch.plan.patch.is_empty() {
            self.record(&batch, &Finish::NotSent, now, shutdown).await?;
            log_unsent(&self.target, &batch.plan.superseded, &batch.plan.expired);
            return Ok(());
        }
        let method = batch.method();
        let Some(started) = self.start(method, &batch, shutdown).await? else {
            return Ok(());
        };
        let token = &self.token;
        token
            .metrics
            .batch_started(&token.name, &batch.rows, started);
        let outcome = guarded(token.sender.send_part(&batch.plan.patch, started), shutdown).await;
        token
            .metrics
            .request_part(method, &token.name, outcome.as_ref());
        let finish = match outcome {
            Some(PartOutcome::NotActive) => Finish::Sent,
            Some(PartOutcome::MissingScope(error)) => {
                tracing::error!(target = %self.target, ids = ?batch.plan.contributors, method = method.name(), error = %error, "failed");
                Finish::Fail { error }
            }
            Some(PartOutcome::Answer(outcome)) => self.decide(&batch.rows, Some(outcome)),
            None => self.decide(&batch.rows, None),
        };
        self.record(&batch, &finish, started, shutdown).await?;
        if finish == Finish::Sent {
            tracing::info!(target = %self.target, ids = ?batch.plan.contributors, method = method.name(), "sent");
            log_unsent(&self.target, &batch.plan.superseded, &batch.plan.expired);
        }
        Ok(())
    }

    /// Send one claimed profile batch and record the outcome. The target's current status is
    /// read first when something depends on it: `respect_manual` on the row whose status would
    /// go out (a status the user set by hand is left alone), a temporary status (what it
    /// replaces is saved for its restore), or a restore (put back only over its own
    /// temporary status or an empty one).
    async fn process_profile(
        &mut self,
        mut batch: Batch,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        let target = self.target.clone();
        let queue = self.token.queue.clone();
        let temporary = temporary_row(&batch).cloned();
        if batch.restore.is_some() || temporary.is_some() || wants_manual_check(&batch) {
            let Some(profile) = self.read(&mut batch, shutdown).await? else {
                return Ok(());
            };
            let now = self.token.clock.now();
            let shown = profile
                .as_ref()
                .map(shown_status)
                .unwrap_or_else(Status::cleared);
            if wants_manual_check(&batch) {
                let ours = match queue.last_sent_status(&target).await {
                    Ok(ours) => ours,
                    // A sent row edited by hand into nonsense says nothing of ours.
                    Err(QueueError::BadPatch { .. }) => None,
                    Err(e) => return self.give_back(&batch, e, shutdown).await,
                };
                if profile.is_some_and(|p| is_manual(&p, ours.as_ref(), now.timestamp())) {
                    batch.plan.skip_status();
                    tracing::info!(target = %target, ids = ?batch.plan.skipped, "skipped: the user set a status by hand");
                }
            }
            if let Some(saved) = batch.restore.clone() {
                let overtaken = match queue.overtaken_since(&target, saved.since).await {
                    Ok(o) => o,
                    Err(e) => return self.give_back(&batch, e, shutdown).await,
                };
                let due = batch.rows[0].fire_at;
                match restore::at_restore(&saved.pending(due), &shown, overtaken, now.timestamp()) {
                    AtRestore::Apply(status) => batch.plan.patch.status = Some(status),
                    AtRestore::Skip(why) => {
                        batch.plan.skip_status_because(why.as_str());
                        tracing::info!(target = %target, ids = ?batch.plan.skipped, reason = why.as_str(), "restore skipped");
                    }
                }
            }
            if let (Some(row), Some(status)) = (&temporary, &batch.plan.patch.status) {
                let waiting = match queue.waiting_restore(&target).await {
                    Ok(w) => w,
                    Err(e) => return self.give_back(&batch, e, shutdown).await,
                };
                let plan = restore::on_temporary(
                    waiting.as_ref().map(|w| &w.restore),
                    &shown,
                    status,
                    status.expiration,
                    now.timestamp(),
                );
                if let restore::Plan::Restore(restore) = plan {
                    batch.leave_restore = Some(LeaveRestore {
                        existing: waiting.map(|w| w.id),
                        restore,
                        rule: row.rule.clone(),
                    });
                }
            }
            if batch.plan.patch.is_empty() {
                self.record(&batch, &Finish::NotSent, now, shutdown).await?;
                log_unsent(&target, &batch.plan.superseded, &batch.plan.expired);
                return Ok(());
            }
        }
        // The claim (a turn at the shared writer) took time: the window counts from the
        // request's real start, taken here.
        let Some(started) = self.start(Method::ProfileSet, &batch, shutdown).await? else {
            return Ok(());
        };
        let token = self.token.clone();
        token
            .metrics
            .batch_started(&token.name, &batch.rows, started);
        let outcome = guarded(
            token.sender.set_profile(&target, &batch.plan.patch),
            shutdown,
        )
        .await;
        token
            .metrics
            .request(Method::ProfileSet, &token.name, outcome.as_ref());
        let finish = self.decide(&batch.rows, outcome);
        self.record(&batch, &finish, started, shutdown).await?;
        if finish == Finish::Sent {
            let plan = &batch.plan;
            tracing::info!(target = %target, ids = ?plan.contributors, "sent");
            log_unsent(&target, &plan.superseded, &plan.expired);
            if let Some(leave) = &batch.leave_restore {
                tracing::info!(target = %target, due = leave.restore.due, "temporary status: the one it replaced is restored at its end");
            }
        }
        Ok(())
    }

    /// Read the target's profile (`users.profile.get`) for `batch`, within the token's read
    /// window (`[limits] per_read`), so that reading never starves writing. `Ok(None)`: the
    /// read failed or could not start, and the batch has been recorded as such.
    async fn read(
        &mut self,
        batch: &mut Batch,
        shutdown: &CancellationToken,
    ) -> Result<Option<Option<serde_json::Value>>, QueueError> {
        let Some(started) = self.start(Method::ProfileGet, batch, shutdown).await? else {
            return Ok(None);
        };
        batch.reads.push(started);
        let token = self.token.clone();
        let answer = guarded(token.sender.get_profile(&self.target), shutdown).await;
        token
            .metrics
            .request(Method::ProfileGet, &token.name, answer.as_ref());
        match answer {
            Some(Outcome::Ok { profile, .. }) => Ok(Some(profile)),
            // The read failed: treat it like a failed set (retry, pause, hold or fail).
            other => {
                let finish = self.decide(&batch.rows, other);
                self.record(batch, &finish, started, shutdown).await?;
                Ok(None)
            }
        }
    }

    /// Take a slot for a call of `method` as it starts, waiting while the windows are full:
    /// the start. `None` if the token is paused or dead by then, or shutdown came first;
    /// `batch`'s rows, claimed all the while so that nothing overtakes them, are then put
    /// back (a dead token's are held at the worker's next turn).
    async fn start(
        &mut self,
        method: Method,
        batch: &Batch,
        shutdown: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, QueueError> {
        let user = self.target.user.clone();
        loop {
            let now = self.token.clock.now();
            let decision = {
                let mut gate = self.token.gate();
                if gate.stopped(now) {
                    None
                } else {
                    Some(gate.limiter.try_start(method, user.as_deref(), now))
                }
            };
            let at = match decision {
                Some(Ok(())) => {
                    // The reservation stands for the profile slot: a read before it (for
                    // `respect_manual` or `restore`) keeps it, so that the set does not then
                    // wait a window on a read that old.
                    if method == Method::ProfileSet {
                        self.unreserve();
                    }
                    return Ok(Some(now));
                }
                Some(Err(at)) => at,
                None => {
                    self.record(batch, &Finish::PutBack, now, shutdown).await?;
                    return Ok(None);
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(self.token.clock.nap_until(at)) => {}
                _ = shutdown.cancelled() => {
                    self.record(batch, &Finish::PutBack, now, shutdown).await?;
                    return Ok(None);
                }
            }
        }
    }

    /// Hand the rows of `batch` back after a queue error in the middle of its flight, then
    /// report the error: kept claimed, newer rows of the target could not go out past them.
    async fn give_back(
        &self,
        batch: &Batch,
        error: QueueError,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        self.record(batch, &Finish::PutBack, self.token.clock.now(), shutdown)
            .await?;
        Err(error)
    }

    /// Record how the request for `batch` ended. A failure to write it (a full disk, a lock
    /// held too long) is retried until it succeeds: the rows stay claimed meanwhile, so that
    /// no newer row of the target can overtake them. Only shutdown or a database that cannot
    /// be used any more ends the wait; the rows are then still `in_flight` on disk and go back
    /// to `pending` at the next start.
    async fn record(
        &self,
        batch: &Batch,
        finish: &Finish,
        started: DateTime<Utc>,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        let token = &self.token;
        loop {
            let e = match token
                .queue
                .finish(batch, finish, started, token.clock.now())
                .await
            {
                Ok(()) => {
                    token.metrics.queue_write(true);
                    return Ok(());
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => e,
            };
            token.metrics.queue_write(false);
            let ids: Vec<i64> = batch.rows.iter().map(|r| r.id).collect();
            tracing::error!(token = %token.name, ids = ?ids, error = %e,
                "cannot record how a request ended; the rows stay claimed, retrying in 1s");
            tokio::select! {
                _ = tokio::time::sleep(RECORD_RETRY) => {}
                _ = shutdown.cancelled() => return Err(e),
            }
        }
    }

    /// Turn Slack's answer into what the queue records, and update the token's pause state:
    /// a 429 or a dead token stops every flight's next start from this moment.
    fn decide(&self, rows: &[Update], outcome: Option<Outcome>) -> Finish {
        let token = &self.token;
        let target = &self.target;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let now = token.clock.now();
        let Some(outcome) = outcome else {
            tracing::warn!(target = %target, ids = ?ids, "shutting down: request abandoned, rows stay pending");
            return Finish::Requeue;
        };
        match outcome {
            Outcome::Ok { warning, .. } => {
                token.gate().blind_429s = 0;
                if let Some(w) = warning {
                    tracing::warn!(target = %target, ids = ?ids, warning = %w, "Slack warned");
                }
                Finish::Sent
            }
            Outcome::RateLimited(retry_after) => {
                let wait = {
                    let mut gate = token.gate();
                    let wait = retry_after.unwrap_or_else(|| {
                        gate.blind_429s += 1;
                        backoff(&token.retry, gate.blind_429s, rand::random())
                    });
                    // However long Slack asks for: an instant past chrono's range waits forever.
                    let until = TimeDelta::from_std(wait)
                        .ok()
                        .and_then(|d| now.checked_add_signed(d))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    // Two flights' 429s: the later end holds.
                    gate.paused_until = Some(gate.paused_until.map_or(until, |u| u.max(until)));
                    wait
                };
                tracing::warn!(token = %token.name, target = %target, ids = ?ids, wait = ?wait, "rate-limited: pausing the token");
                Finish::Requeue
            }
            Outcome::Transient(error) => {
                let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(0) + 1;
                let wait = backoff(&token.retry, attempts, rand::random());
                let retry_at = TimeDelta::from_std(wait)
                    .ok()
                    .and_then(|w| now.checked_add_signed(w))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                if attempts >= token.retry.max_attempts {
                    tracing::error!(target = %target, ids = ?ids, error = %error, attempts, "failed: out of attempts");
                } else {
                    tracing::warn!(target = %target, ids = ?ids, error = %error, attempts, retry_in = ?wait, "retrying");
                }
                Finish::Retry {
                    error,
                    retry_at,
                    max_attempts: token.retry.max_attempts,
                }
            }
            Outcome::TokenDead(error) => {
                token.gate().dead = Some(error.clone());
                token.metrics.token_held(&token.name, true);
                tracing::error!(token = %token.name, target = %target, ids = ?ids, error = %error,
                    "failed: the token was refused; its other rows are held until the config changes it");
                Finish::FailAndHoldToken { error }
            }
            Outcome::Permanent(error) => {
                tracing::error!(target = %target, ids = ?ids, error = %error, "failed");
                Finish::Fail { error }
            }
        }
    }
}

/// The row whose status would go out, if it is temporary (`restore = true`): a status with
/// an end to restore at. A clear is never temporary.
fn temporary_row(batch: &Batch) -> Option<&Update> {
    let id = batch.plan.status_from?;
    batch.rows.iter().find(|r| {
        r.id == id
            && r.restore
            && r.patch
                .status
                .as_ref()
                .is_some_and(|s| s.expiration != 0 && !s.is_empty())
    })
}

/// Whether the row whose status would go out asked to respect a manual status.
fn wants_manual_check(batch: &Batch) -> bool {
    batch
        .plan
        .status_from
        .is_some_and(|id| batch.rows.iter().any(|r| r.id == id && r.respect_manual))
}

/// Await a request, but once shutdown begins give it at most [`DRAIN`] more; `None` if it was
/// abandoned.
async fn guarded<T>(
    request: impl std::future::Future<Output = T>,
    shutdown: &CancellationToken,
) -> Option<T> {
    tokio::pin!(request);
    tokio::select! {
        outcome = &mut request => Some(outcome),
        _ = shutdown.cancelled() => tokio::time::timeout(DRAIN, request).await.ok(),
    }
}

fn log_unsent(target: &Target, superseded: &[i64], expired: &[i64]) {
    if !superseded.is_empty() {
        tracing::info!(target = %target, ids = ?superseded, "superseded by a newer firing");
    }
    if !expired.is_empty() {
        tracing::info!(target = %target, ids = ?expired, "expired before its turn; not sent");
    }
}
