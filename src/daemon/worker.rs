//! The worker of one token: drains that token's targets through the throttle into Slack.
//!
//! One task per token, so a slow or rate-limited token never delays another. Within a token,
//! requests for different targets go out together (SPEC §4): the worker launches a
//! [`Flight`] for every target that may go now — at most `[limits] in_flight` at once and no
//! more than the token's window has room for — each on its own task, and one target never
//! has two. [`Worker::step`] launches what may go and waits for all of it to land (the unit
//! tests drive it); [`Worker::run`] launches again as each flight lands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Limits, RetryPolicy};
use crate::observe::Metrics;
use crate::queue::{Queue, QueueError};
use crate::throttle::{Method, TokenLimiter};

use super::flight::{Flight, Gate, Token};
use super::sender::Sender;

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Requests went out, or rows were finished without one: call `step` again.
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
    /// What its flights share: the token, its sender and its gate.
    token: Arc<Token>,
    /// Flights at most at once (`[limits] in_flight`).
    in_flight: usize,
    /// The flights in the air.
    flights: JoinSet<Result<(), QueueError>>,
    /// The target user of each flight in the air (`None`: the token's own profile).
    busy: HashMap<Id, Option<String>>,
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
        let gate = Gate {
            limiter,
            paused_until: None,
            blind_429s: 0,
            dead: None,
            reserved: 0,
            wants_room: false,
        };
        Ok(Worker {
            token: Arc::new(Token {
                name: token,
                sender,
                queue,
                clock,
                retry,
                metrics: Metrics::default(),
                gate: Mutex::new(gate),
                room_freed: Notify::new(),
            }),
            in_flight: limits.in_flight.max(1) as usize,
            flights: JoinSet::new(),
            busy: HashMap::new(),
        })
    }

    /// Count this worker's requests in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Worker {
        Arc::get_mut(&mut self.token)
            .expect("metrics are set before any flight is launched")
            .metrics = metrics;
        self
    }

    /// Launch every flight that may go now, then wait until all of them have landed.
    pub async fn step(&mut self, shutdown: &CancellationToken) -> Result<Step, QueueError> {
        let wake_at = self.launch(shutdown).await?;
        if self.flights.is_empty() {
            return Ok(Step::Idle { wake_at });
        }
        let mut result = Ok(Step::Worked);
        while let Some(landed) = self.flights.join_next_with_id().await {
            if let Err(e) = self.land(landed) {
                result = Err(e);
            }
        }
        result
    }

    /// Launch a flight for each target that may go now; `Ok` with the earliest instant at
    /// which another might (`None`: only a wake-up or a landing brings one).
    async fn launch(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, QueueError> {
        let token = self.token.clone();
        let now = token.clock.now();
        {
            let dead = token.gate().dead.clone();
            if let Some(error) = dead {
                // Rows that arrived since the token died join the held ones; flights in the
                // air finish with their own answers.
                token.queue.hold_token(&token.name, &error, now).await?;
                return Ok(None);
            }
            let mut gate = token.gate();
            match gate.paused_until {
                Some(until) if until > now => return Ok(Some(until)),
                Some(_) => gate.paused_until = None,
                None => {}
            }
        }
        let mut wake_at: Option<DateTime<Utc>> = None;
        if self.flights.len() >= self.in_flight {
            return Ok(None);
        }
        for ready in token.queue.ready_targets(&token.name).await? {
            if self.flights.len() >= self.in_flight {
                // A landing frees a place and launches again.
                break;
            }
            let user = ready.target.user.as_deref();
            if self.busy.values().any(|u| u.as_deref() == user) {
                // Its flight's landing launches again.
                continue;
            }
            let at = {
                let mut gate = token.gate();
                let at = ready.ready_at.max(gate.limiter.next_allowed(user, now));
                let room = gate
                    .limiter
                    .free_profile_sets(now)
                    .saturating_sub(gate.reserved);
                if at <= now && room == 0 {
                    // Every free slot is promised to a flight launched already: the first
                    // to start (or to give its slot up) brings the next turn.
                    gate.wants_room = true;
                    break;
                }
                at
            };
            if at > now {
                wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                continue;
            }
            let user = ready.target.user.clone();
            let flight = Flight::launch(token.clone(), ready.target);
            let handle = self.flights.spawn(flight.fly(shutdown.clone()));
            self.busy.insert(handle.id(), user);
        }
        Ok(wake_at)
    }

    /// Take note of a landed flight: its target may fly again.
    fn land(
        &mut self,
        landed: Result<(Id, Result<(), QueueError>), JoinError>,
    ) -> Result<(), QueueError> {
        match landed {
            Ok((id, result)) => {
                self.busy.remove(&id);
                result
            }
            Err(e) => {
                self.busy.remove(&e.id());
                // Its rows stay claimed on disk and go back to `pending` at the next start.
                tracing::error!(token = %self.token.name, error = %e, "a request's task ended abnormally");
                Ok(())
            }
        }
    }

    /// Work until shutdown: launch what may go, then sleep until a flight lands, the next
    /// possible instant (at most [`crate::clock::MAX_NAP`], to follow the wall clock), or a
    /// wake-up. At shutdown, wait for the flights in the air (each gives up its request
    /// within [`super::flight::DRAIN`]).
    pub async fn run(mut self, wake: Arc<Notify>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let result = match Box::pin(self.launch(&shutdown)).await {
                Ok(wake_at) => {
                    let nap = wake_at.map(|at| self.token.clock.nap_until(at));
                    tokio::select! {
                        Some(landed) = self.flights.join_next_with_id(), if !self.flights.is_empty() => {
                            self.land(landed)
                        }
                        // Nothing pending: only a wake-up (a firing, a row from `set`) brings
                        // work, so an idle token costs nothing.
                        _ = wake.notified() => Ok(()),
                        _ = self.token.room_freed.notified() => Ok(()),
                        _ = tokio::time::sleep(nap.unwrap_or_default()), if nap.is_some() => Ok(()),
                        _ = shutdown.cancelled() => Ok(()),
                    }
                }
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                // A corrupt database seen by a read is as fatal as one seen by a write.
                self.token.queue.note_error(&e);
                self.token.metrics.queue_write(false);
                // The database is busy or broken: keep the rows, try again shortly.
                tracing::error!(token = %self.token.name, error = %e, "queue error; retrying in 1s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
        while let Some(landed) = self.flights.join_next_with_id().await {
            let _ = self.land(landed);
        }
    }
}
