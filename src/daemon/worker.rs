//! The worker of one token: drains that token's targets through the throttle into Slack.
//!
//! One task per token, so a slow or rate-limited token never delays another. The work is a
//! step function, [`Worker::step`]: one request (or one decision that nothing can go yet)
//! per call; the loop around it in [`Worker::run`] only sleeps and wakes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Limits, RetryPolicy, Secret};
use crate::observe::Metrics;
use crate::profile::{Dnd, Patch, Status};
use crate::queue::{Batch, Claim, Finish, LeaveRestore, Queue, QueueError, Target, Update};
use crate::restore::{self, AtRestore};
use crate::slack::manual::{is_manual, shown_status};
use crate::slack::{dnd_minutes, Client, Outcome, PartOutcome};
use crate::throttle::{backoff, Method, TokenLimiter};

/// How long a request in flight may still take once shutdown has begun; after that it is
/// abandoned and its rows go back to `pending`.
pub const DRAIN: Duration = Duration::from_secs(3);

/// How long the worker waits before it tries again to record an outcome the database refused.
const RECORD_RETRY: Duration = Duration::from_secs(1);

/// Where requests go.
#[derive(Debug, Clone)]
pub enum Sender {
    /// To Slack, with the token's value.
    Slack {
        /// The HTTP client.
        client: Client,
        /// The token's value.
        token: Secret,
    },
    /// Nowhere: log what would be sent and report success (`run --dry-run`).
    DryRun,
}

impl Sender {
    async fn set_profile(&self, target: &Target, patch: &Patch) -> Outcome {
        match self {
            Sender::Slack { client, token } => {
                client
                    .set_profile(token, target.user.as_deref(), patch)
                    .await
            }
            Sender::DryRun => {
                let body = Client::set_body(target.user.as_deref(), patch);
                // The body carries the config's status text; JSON escapes C0 controls but not DEL or C1.
                let body = crate::untrusted::escape(&body.to_string()).into_owned();
                tracing::info!(target = %target, body = %body, "dry run: would POST users.profile.set");
                Outcome::Ok {
                    warning: None,
                    profile: None,
                }
            }
        }
    }

    /// Send the DND or presence part `patch`, for a request starting at `started` (a
    /// snooze lasts from then until its end).
    async fn send_part(&self, patch: &Patch, started: DateTime<Utc>) -> PartOutcome {
        match self {
            Sender::Slack { client, token } => match (patch.dnd, patch.presence) {
                (Some(Dnd::Snooze { until }), _) => {
                    let until = DateTime::from_timestamp(until, 0).unwrap_or(started);
                    client.set_snooze(token, dnd_minutes(until, started)).await
                }
                (Some(Dnd::End), _) => client.end_snooze(token).await,
                (None, Some(presence)) => client.set_presence(token, presence).await,
                (None, None) => unreachable!("a part's batch sets DND or presence"),
            },
            Sender::DryRun => {
                let method = Method::sending(patch).name();
                tracing::info!(method, dnd = ?patch.dnd, presence = ?patch.presence, "dry run: would POST");
                PartOutcome::Answer(Outcome::Ok {
                    warning: None,
                    profile: None,
                })
            }
        }
    }

    async fn get_profile(&self, target: &Target) -> Outcome {
        match self {
            Sender::Slack { client, token } => {
                client.get_profile(token, target.user.as_deref()).await
            }
            // A dry run knows no current status: nothing was set by hand.
            Sender::DryRun => Outcome::Ok {
                warning: None,
                profile: None,
            },
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A request went out, or rows were finished without one: call `step` again.
    Worked,
    /// Nothing can go now; the next thing may go at `wake_at` (`None`: only a wake-up brings
    /// new work).
    Idle {
        /// The earliest instant something may become possible.
        wake_at: Option<DateTime<Utc>>,
    },
}

/// The worker of one token.
#[derive(Debug)]
pub struct Worker {
    /// The token's name, as rows refer to it.
    token: String,
    /// Where requests go.
    sender: Sender,
    /// The queue.
    queue: Queue,
    /// The wall clock.
    clock: Clock,
    /// Sliding windows for the token and its targets.
    limiter: TokenLimiter,
    /// Retry policy for transient failures.
    retry: RetryPolicy,
    /// No request for this token before this instant (`Retry-After`, or backoff after a 429
    /// without one).
    paused_until: Option<DateTime<Utc>>,
    /// 429s in a row without a usable `Retry-After`, for their backoff.
    blind_429s: u32,
    /// The token failed authentication with this code: its rows are held until a reload
    /// changes it.
    dead: Option<String>,
    /// Where requests, their delays and the queue's health are counted (SPEC §7).
    metrics: Metrics,
}

impl Worker {
    /// A worker for `token`, with its windows rebuilt from the request log in the database so
    /// that a restart in the middle of a burst cannot overshoot a limit.
    pub async fn new(
        token: String,
        sender: Sender,
        queue: Queue,
        clock: Clock,
        limits: Limits,
        retry: RetryPolicy,
    ) -> Result<Worker, QueueError> {
        let now = clock.now();
        let since = TimeDelta::from_std(limits.window)
            .ok()
            .and_then(|w| now.checked_sub_signed(w))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let sends = queue.sends_since(&token, since).await?;
        let limiter = TokenLimiter::rebuilt(
            limits,
            sends.into_iter().filter_map(|(method, user, at)| {
                // A method this build does not know (a newer version's log) limits nothing.
                Method::from_name(&method).map(|m| (m, user, at))
            }),
        );
        Ok(Worker {
            token,
            sender,
            queue,
            clock,
            limiter,
            retry,
            paused_until: None,
            blind_429s: 0,
            dead: None,
            metrics: Metrics::default(),
        })
    }

    /// Count this worker's requests in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Worker {
        self.metrics = metrics;
        self
    }

    /// Do one unit of work: send one request for the first target that may go now.
    pub async fn step(&mut self, shutdown: &CancellationToken) -> Result<Step, QueueError> {
        let now = self.clock.now();
        if let Some(error) = &self.dead {
            // Rows that arrived since the token died join the held ones.
            self.queue.hold_token(&self.token, error, now).await?;
            return Ok(Step::Idle { wake_at: None });
        }
        if let Some(until) = self.paused_until {
            if until > now {
                return Ok(Step::Idle {
                    wake_at: Some(until),
                });
            }
            self.paused_until = None;
        }
        let mut wake_at: Option<DateTime<Utc>> = None;
        for ready in self.queue.ready_targets(&self.token).await? {
            let user = ready.target.user.as_deref();
            let at = ready.ready_at.max(self.limiter.next_allowed(user, now));
            if at > now {
                wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                continue;
            }
            match self.queue.claim(&ready.target, now).await? {
                Claim::NotReady => continue,
                // With nothing to send, `process` finishes every part as its plan says.
                Claim::NothingToSend(batch) | Claim::Send(batch) => {
                    self.process(&ready.target, batch, shutdown).await?;
                    return Ok(Step::Worked);
                }
            }
        }
        Ok(Step::Idle { wake_at })
    }

    /// Send one claimed batch — its profile part, then DND, then presence, each its own
    /// request with its own outcome — and record each outcome. A part whose turn comes while
    /// the token is paused or dead goes back to `pending` (a dead token's are held next).
    async fn process(
        &mut self,
        target: &Target,
        mut batch: Batch,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        let parts = std::mem::take(&mut batch.more);
        let mut result = if batch.plan.patch.is_empty() {
            let done = self
                .record(&batch, &Finish::NotSent, self.clock.now(), shutdown)
                .await;
            log_unsent(target, &batch.plan.superseded, &batch.plan.expired);
            done
        } else {
            self.process_profile(target, batch, shutdown).await
        };
        for part in parts {
            let now = self.clock.now();
            let stopped = self.dead.is_some() || self.paused_until.is_some_and(|u| u > now);
            result = match result {
                // Claimed rows are never left behind: after an error they go back.
                Err(e) => {
                    let _ = self.record(&part, &Finish::Requeue, now, shutdown).await;
                    Err(e)
                }
                Ok(()) if stopped => self.record(&part, &Finish::Requeue, now, shutdown).await,
                Ok(()) => self.process_part(target, part, shutdown).await,
            };
        }
        result
    }

    /// Send one DND or presence part (the newest due of its group) through the token's
    /// window for its method, and record its outcome: `missing_scope` fails the part alone,
    /// `snooze_not_active` is done, anything else as for a profile update.
    async fn process_part(
        &mut self,
        target: &Target,
        batch: Batch,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        let now = self.clock.now();
        if batch.plan.patch.is_empty() {
            self.record(&batch, &Finish::NotSent, now, shutdown).await?;
            log_unsent(target, &batch.plan.superseded, &batch.plan.expired);
            return Ok(());
        }
        let method = batch.method();
        let Some(started) = self.start_in_window(method, &batch, shutdown).await? else {
            return Ok(());
        };
        self.metrics
            .batch_started(&self.token, &batch.rows, started);
        let outcome = guarded(self.sender.send_part(&batch.plan.patch, started), shutdown).await;
        self.metrics
            .request_part(method, &self.token, outcome.as_ref());
        let finish = match outcome {
            Some(PartOutcome::NotActive) => Finish::Sent,
            Some(PartOutcome::MissingScope(error)) => {
                tracing::error!(target = %target, ids = ?batch.plan.contributors, method = method.name(), error = %error, "failed");
                Finish::Fail { error }
            }
            Some(PartOutcome::Answer(outcome)) => self.decide(target, &batch.rows, Some(outcome)),
            None => self.decide(target, &batch.rows, None),
        };
        self.record(&batch, &finish, started, shutdown).await?;
        if finish == Finish::Sent {
            tracing::info!(target = %target, ids = ?batch.plan.contributors, method = method.name(), "sent");
            log_unsent(target, &batch.plan.superseded, &batch.plan.expired);
        }
        Ok(())
    }

    /// Send one claimed profile batch and record the outcome. The target's current status is read
    /// first when something depends on it: `respect_manual` on the row whose status would go
    /// out (a status the user set by hand is left alone), a temporary status (what it
    /// replaces is saved for its restore), or a restore (put back only over its own
    /// temporary status or an empty one).
    async fn process_profile(
        &mut self,
        target: &Target,
        mut batch: Batch,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        let temporary = self.temporary_row(&batch).cloned();
        if batch.restore.is_some() || temporary.is_some() || self.wants_manual_check(&batch) {
            let Some(profile) = self.read(target, &mut batch, shutdown).await? else {
                return Ok(());
            };
            let now = self.clock.now();
            let shown = profile
                .as_ref()
                .map(shown_status)
                .unwrap_or_else(Status::cleared);
            if self.wants_manual_check(&batch) {
                let ours = match self.queue.last_sent_status(target).await {
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
                let overtaken = match self.queue.overtaken_since(target, saved.since).await {
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
                let waiting = match self.queue.waiting_restore(target).await {
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
                log_unsent(target, &batch.plan.superseded, &batch.plan.expired);
                return Ok(());
            }
        }
        // The claim (a turn at the shared writer) took time: the request starts now, and the
        // window must count from the real start, not from before the claim.
        let started = self.clock.now();
        self.limiter.record(target.user.as_deref(), started);
        self.metrics
            .batch_started(&self.token, &batch.rows, started);
        let outcome = guarded(self.sender.set_profile(target, &batch.plan.patch), shutdown).await;
        self.metrics
            .request(Method::ProfileSet, &self.token, outcome.as_ref());
        let finish = self.decide(target, &batch.rows, outcome);
        self.record(&batch, &finish, started, shutdown).await?;
        if finish == Finish::Sent {
            let plan = &batch.plan;
            tracing::info!(target = %target, ids = ?plan.contributors, "sent");
            log_unsent(target, &plan.superseded, &plan.expired);
            if let Some(leave) = &batch.leave_restore {
                tracing::info!(target = %target, due = leave.restore.due, "temporary status: the one it replaced is restored at its end");
            }
        }
        Ok(())
    }

    /// Read `target`'s profile (`users.profile.get`) for `batch`, within the token's read
    /// window (`[limits] per_read`), so that reading never starves writing. `Ok(None)`: the
    /// read failed or shutdown came first, and the batch has been recorded as such.
    async fn read(
        &mut self,
        target: &Target,
        batch: &mut Batch,
        shutdown: &CancellationToken,
    ) -> Result<Option<Option<serde_json::Value>>, QueueError> {
        let Some(started) = self
            .start_in_window(Method::ProfileGet, batch, shutdown)
            .await?
        else {
            return Ok(None);
        };
        batch.reads.push(started);
        let answer = guarded(self.sender.get_profile(target), shutdown).await;
        self.metrics
            .request(Method::ProfileGet, &self.token, answer.as_ref());
        match answer {
            Some(Outcome::Ok { profile, .. }) => Ok(Some(profile)),
            // The read failed: treat it like a failed set (retry, pause, hold or fail).
            other => {
                let finish = self.decide(target, &batch.rows, other);
                self.record(batch, &finish, started, shutdown).await?;
                Ok(None)
            }
        }
    }

    /// Wait until the token's window for `method` (one of the token's own, not a target's)
    /// has room, then count a request of it as starting now: its start. `None` if shutdown
    /// came first; `batch`'s rows, claimed all the while so that nothing overtakes them, are
    /// then put back.
    async fn start_in_window(
        &mut self,
        method: Method,
        batch: &Batch,
        shutdown: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, QueueError> {
        let now = self.clock.now();
        let at = self.limiter.next_allowed_for(method, None, now);
        if at > now {
            tokio::select! {
                _ = tokio::time::sleep(self.clock.nap_until(at)) => {}
                _ = shutdown.cancelled() => {
                    self.record(batch, &Finish::Requeue, now, shutdown).await?;
                    return Ok(None);
                }
            }
        }
        let started = self.clock.now();
        self.limiter.record_for(method, None, started);
        Ok(Some(started))
    }

    /// Hand the rows of `batch` back after a queue error in the middle of its step, then
    /// report the error: kept claimed, newer rows of the target could not go out past them.
    async fn give_back(
        &self,
        batch: &Batch,
        error: QueueError,
        shutdown: &CancellationToken,
    ) -> Result<(), QueueError> {
        self.record(batch, &Finish::Requeue, self.clock.now(), shutdown)
            .await?;
        Err(error)
    }

    /// The row whose status would go out, if it is temporary (`restore = true`): a status
    /// with an end to restore at. A clear is never temporary.
    fn temporary_row<'b>(&self, batch: &'b Batch) -> Option<&'b Update> {
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
        loop {
            let e = match self
                .queue
                .finish(batch, finish, started, self.clock.now())
                .await
            {
                Ok(()) => {
                    self.metrics.queue_write(true);
                    return Ok(());
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => e,
            };
            self.metrics.queue_write(false);
            let ids: Vec<i64> = batch.rows.iter().map(|r| r.id).collect();
            tracing::error!(token = %self.token, ids = ?ids, error = %e,
                "cannot record how a request ended; the rows stay claimed, retrying in 1s");
            tokio::select! {
                _ = tokio::time::sleep(RECORD_RETRY) => {}
                _ = shutdown.cancelled() => return Err(e),
            }
        }
    }

    /// Whether the row whose status would go out asked to respect a manual status.
    fn wants_manual_check(&self, batch: &Batch) -> bool {
        batch
            .plan
            .status_from
            .is_some_and(|id| batch.rows.iter().any(|r| r.id == id && r.respect_manual))
    }

    /// Turn Slack's answer into what the queue records, and update the token's pause state.
    fn decide(&mut self, target: &Target, rows: &[Update], outcome: Option<Outcome>) -> Finish {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let now = self.clock.now();
        let Some(outcome) = outcome else {
            tracing::warn!(target = %target, ids = ?ids, "shutting down: request abandoned, rows stay pending");
            return Finish::Requeue;
        };
        match outcome {
            Outcome::Ok { warning, .. } => {
                self.blind_429s = 0;
                if let Some(w) = warning {
                    tracing::warn!(target = %target, ids = ?ids, warning = %w, "Slack warned");
                }
                Finish::Sent
            }
            Outcome::RateLimited(retry_after) => {
                let wait = retry_after.unwrap_or_else(|| {
                    self.blind_429s += 1;
                    backoff(&self.retry, self.blind_429s, rand::random())
                });
                // However long Slack asks for: an instant past chrono's range waits forever.
                let until = TimeDelta::from_std(wait)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d));
                self.paused_until = Some(until.unwrap_or(DateTime::<Utc>::MAX_UTC));
                tracing::warn!(token = %self.token, target = %target, ids = ?ids, wait = ?wait, "rate-limited: pausing the token");
                Finish::Requeue
            }
            Outcome::Transient(error) => {
                let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(0) + 1;
                let wait = backoff(&self.retry, attempts, rand::random());
                let retry_at = TimeDelta::from_std(wait)
                    .ok()
                    .and_then(|w| now.checked_add_signed(w))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                if attempts >= self.retry.max_attempts {
                    tracing::error!(target = %target, ids = ?ids, error = %error, attempts, "failed: out of attempts");
                } else {
                    tracing::warn!(target = %target, ids = ?ids, error = %error, attempts, retry_in = ?wait, "retrying");
                }
                Finish::Retry {
                    error,
                    retry_at,
                    max_attempts: self.retry.max_attempts,
                }
            }
            Outcome::TokenDead(error) => {
                self.dead = Some(error.clone());
                self.metrics.token_held(&self.token, true);
                tracing::error!(token = %self.token, target = %target, ids = ?ids, error = %error,
                    "failed: the token was refused; its other rows are held until the config changes it");
                Finish::FailAndHoldToken { error }
            }
            Outcome::Permanent(error) => {
                tracing::error!(target = %target, ids = ?ids, error = %error, "failed");
                Finish::Fail { error }
            }
        }
    }

    /// Step until shutdown, sleeping when idle until the next possible instant (at most
    /// [`crate::clock::MAX_NAP`], to follow the wall clock) or a wake-up.
    pub async fn run(mut self, wake: Arc<Notify>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            // Boxed: the step future (claim, request, finish) is ~4 KB, and inline it would
            // make every idle worker's task that large; with 10,000 tokens that is 40 MB.
            match Box::pin(self.step(&shutdown)).await {
                Ok(Step::Worked) => continue,
                // Nothing pending: only a wake-up (a firing, a row from `set`) brings work, so
                // an idle token costs nothing.
                Ok(Step::Idle { wake_at: None }) => {
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Ok(Step::Idle { wake_at: Some(at) }) => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.clock.nap_until(at)) => {}
                        _ = wake.notified() => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(e) => {
                    // A corrupt database seen by a read is as fatal as one seen by a write.
                    self.queue.note_error(&e);
                    self.metrics.queue_write(false);
                    // The database is busy or broken: keep the rows, try again shortly.
                    tracing::error!(token = %self.token, error = %e, "queue error; retrying in 1s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }
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
