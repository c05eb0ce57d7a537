//! The scheduler task: turns rule firings into queue rows, exactly once each.
//!
//! It keeps every rule's next firing in a min-heap and sleeps until the earliest one (or at
//! most [`crate::clock::MAX_NAP`], to follow the wall clock across a suspend or a clock
//! change). The decisions — which firing to apply after a gap, and what it sets — are the
//! pure functions [`firing_to_apply`] and [`patch_for`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Rule;
use crate::observe::Metrics;
use crate::profile::{Dnd, Patch, Status};
use crate::queue::{Advance, NewUpdate, Queue, QueueError, Target};
use crate::schedule::{expiry_instant, last_firing_in, next_firing};

/// A firing this late is still "on time" and applied even with `catch_up = "0s"`: the
/// scheduler itself can wake a little late, and a short suspend should not drop a status.
pub const ON_TIME: Duration = Duration::from_secs(60);

/// Of the firings of one rule that fell in a gap, the one to apply: the most recent, and only
/// if it is within `max(catch_up, ON_TIME)` of `now` and its status has not expired yet.
pub fn firing_to_apply(
    rule: &Rule,
    mark: DateTime<Utc>,
    now: DateTime<Utc>,
    catch_up: Duration,
) -> Option<DateTime<Utc>> {
    let reach = TimeDelta::from_std(catch_up.max(ON_TIME)).unwrap_or(TimeDelta::MAX);
    let from = mark.max(now.checked_sub_signed(reach).unwrap_or(mark));
    let fired = last_firing_in(&rule.schedule, rule.timezone, &rule.skip_dates, from, now)?;
    if rule.status.is_some() {
        if let Some(expires) = expiry_instant(rule.expiry, rule.timezone, fired) {
            if expires <= now {
                return None;
            }
        }
    }
    Some(fired)
}

/// What `rule` sets when it fires at `fired`: its status with the absolute expiry (the
/// firing instant plus `expire_after`, or the `expire_at` instant), and its other fields.
pub fn patch_for(rule: &Rule, fired: DateTime<Utc>) -> Patch {
    let expiry = expiry_instant(rule.expiry, rule.timezone, fired).map_or(0, |e| e.timestamp());
    let status = rule.status.as_ref().map(|s| Status {
        text: s.text.clone(),
        emoji: s.emoji.clone(),
        expiration: expiry,
    });
    Patch {
        status,
        fields: rule.profile.clone(),
        // The config refuses `dnd = true` without an expiry: the snooze ends with the status.
        dnd: rule.dnd.map(|on| Dnd::toggle(on, expiry)),
        presence: rule.presence,
    }
}

/// The scheduler of one set of rules.
#[derive(Debug)]
pub struct Scheduler {
    /// The rules, by position; shared with the config, not copied (100,000 rules are tens of
    /// megabytes).
    rules: Arc<[Rule]>,
    /// The queue rows are written to.
    queue: Queue,
    /// The wall clock.
    clock: Clock,
    /// `catch_up` from the config.
    catch_up: Duration,
    /// Per token name, the worker to wake when a row is enqueued.
    wakers: HashMap<String, Arc<Notify>>,
    /// Per rule index, the instant up to which it has been scheduled.
    marks: Vec<DateTime<Utc>>,
    /// (next firing, rule index), earliest first.
    heap: BinaryHeap<Reverse<(DateTime<Utc>, usize)>>,
    /// Told whether each tick worked, for `/healthz`.
    metrics: Metrics,
}

impl Scheduler {
    /// Load every rule's mark; a rule new to the daemon starts from now.
    pub async fn new(
        rules: Arc<[Rule]>,
        queue: Queue,
        clock: Clock,
        catch_up: Duration,
        wakers: HashMap<String, Arc<Notify>>,
    ) -> Result<Scheduler, QueueError> {
        let now = clock.now();
        let known = queue.rule_marks().await?;
        let mut marks = Vec::with_capacity(rules.len());
        let mut heap = BinaryHeap::with_capacity(rules.len());
        let mut new_rules = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let mark = match known.get(&rule.name) {
                Some(m) => *m,
                None => {
                    new_rules.push(Advance {
                        rule: rule.name.clone(),
                        until: now,
                        firing: None,
                    });
                    now
                }
            };
            if let Some(next) = next_firing(&rule.schedule, rule.timezone, &rule.skip_dates, mark) {
                heap.push(Reverse((next, i)));
            }
            marks.push(mark);
        }
        // One transaction for every new rule, not one commit each.
        queue.advance_rules(&new_rules, now).await?;
        Ok(Scheduler {
            rules,
            queue,
            clock,
            catch_up,
            wakers,
            marks,
            heap,
            metrics: Metrics::default(),
        })
    }

    /// Tell `metrics` whether each tick worked (for `/healthz`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Scheduler {
        self.metrics = metrics;
        self
    }

    /// The earliest next firing of any rule (for status lines).
    pub fn next_firing(&self) -> Option<DateTime<Utc>> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Enqueue everything due at the current wall-clock time, in one transaction. Returns the
    /// ids enqueued.
    pub async fn tick(&mut self) -> Result<Vec<i64>, QueueError> {
        let now = self.clock.now();
        let mut due = Vec::new();
        while let Some(Reverse((at, i))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            due.push((at, i));
        }
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let advances: Vec<Advance> = due
            .iter()
            .map(|&(_, i)| {
                let rule = &self.rules[i];
                let firing =
                    firing_to_apply(rule, self.marks[i], now, self.catch_up).map(|fired| {
                        NewUpdate {
                            rule: Some(rule.name.clone()),
                            target: Target {
                                token: rule.token.clone(),
                                user: rule.user.clone(),
                            },
                            fire_at: fired,
                            patch: patch_for(rule, fired),
                            respect_manual: rule.respect_manual,
                            restore: rule.restore,
                        }
                    });
                Advance {
                    rule: rule.name.clone(),
                    until: now,
                    firing,
                }
            })
            .collect();
        // On a database error the heap entries are lost for this tick: put them back so the
        // next tick retries them.
        let ids = match self.queue.advance_rules(&advances, now).await {
            Ok(ids) => ids,
            Err(e) => {
                for (at, i) in due {
                    self.heap.push(Reverse((at, i)));
                }
                return Err(e);
            }
        };
        // Wake the workers first: a thousand requests should not wait for a thousand log lines.
        for (&(_, i), id) in due.iter().zip(&ids) {
            if let (Some(_), Some(w)) = (id, self.wakers.get(&self.rules[i].token)) {
                w.notify_one();
            }
        }
        let mut enqueued = Vec::new();
        for ((at, i), (advance, id)) in due.into_iter().zip(advances.iter().zip(ids)) {
            let rule = &self.rules[i];
            self.marks[i] = self.marks[i].max(now);
            match (&advance.firing, id) {
                (Some(f), Some(id)) => {
                    tracing::info!(rule = %rule.name, target = %f.target, id, at = %f.fire_at, "fired");
                    enqueued.push(id);
                }
                _ => {
                    tracing::info!(rule = %rule.name, due = %at, "missed firing not applied (outside catch_up or expired)")
                }
            }
            if let Some(next) = next_firing(
                &rule.schedule,
                rule.timezone,
                &rule.skip_dates,
                self.marks[i],
            ) {
                self.heap.push(Reverse((next, i)));
            }
        }
        Ok(enqueued)
    }

    /// Tick until shutdown, sleeping until the next firing; publishes the next firing on
    /// `next` for status lines.
    pub async fn run(
        mut self,
        shutdown: CancellationToken,
        next: watch::Sender<Option<DateTime<Utc>>>,
    ) {
        while !shutdown.is_cancelled() {
            let nap = match self.tick().await {
                Ok(_) => {
                    self.metrics.scheduled(true);
                    next.send_replace(self.next_firing());
                    match self.next_firing() {
                        Some(at) => self.clock.nap_until(at),
                        None => crate::clock::MAX_NAP,
                    }
                }
                Err(e) => {
                    self.metrics.scheduled(false);
                    self.queue.note_error(&e);
                    tracing::error!(error = %e, "queue error while scheduling; retrying in 1s");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}
