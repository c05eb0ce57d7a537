//! The scheduler task: turns rule firings into queue rows, exactly once each.
//!
//! It keeps every rule's next firing in a min-heap and sleeps until the earliest one (or at
//! most [`crate::clock::MAX_NAP`], to follow the wall clock across a suspend or a clock
//! change). The decisions — which firing to apply after a gap, and what it sets — are the
//! pure functions [`firing_to_apply`] and [`patch_for`].
//!
//! A firing is committed up to [`AHEAD`] before its instant, with its instant as the row's
//! not-before time: the worker sleeps until then, so that at the instant no transaction
//! stands between the timer and the request. Each mark keeps a [`fingerprint`] of the rule,
//! and a start or reload that finds a rule changed or gone while its firing waits rewinds it
//! (`Queue::rewind_rules`): the waiting rows are superseded and the new version fires as if
//! newly written.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Wakers;
use crate::clock::Clock;
use crate::config::Rule;
use crate::observe::Metrics;
use crate::profile::{Dnd, Patch, Status};
use crate::queue::{
    Advance, NewUpdate, Queue, QueueError, RuleMark, Target, CONFIG_CHANGED, MISSED,
};
use crate::schedule::{expiry_instant, last_firing_in, next_firing, Schedule};

/// A firing this late is still "on time" and applied even with `catch_up = "0s"`: the
/// scheduler itself can wake a little late, and a short suspend should not drop a status.
pub const ON_TIME: Duration = Duration::from_secs(60);

/// How long before its instant a firing is committed to the queue. Long enough for a
/// thousand rows' commit on a loaded machine; short enough that a reload seldom finds a
/// firing waiting.
pub const AHEAD: Duration = Duration::from_secs(2);

/// [`AHEAD`] as a `TimeDelta`.
fn ahead() -> TimeDelta {
    TimeDelta::from_std(AHEAD).expect("AHEAD is a few seconds")
}

/// A fingerprint of everything in `rule` that decides its firings and what they set: a rule
/// whose fingerprint differs from its mark's has changed. FNV-1a over a canonical text of
/// those fields (a cron rule by its expression, not croner's parsed form, whose `Debug` runs
/// to kilobytes), stable across runs; its file is left out, so that moving a rule to another
/// drop-in changes nothing. A new version that renders a field differently sees every rule
/// as changed once, which only re-enqueues the firings waiting ahead.
pub fn fingerprint(rule: &Rule) -> i64 {
    // Every field named: a field added to `Rule` must be sorted in or out here.
    let Rule {
        name: _,
        token,
        user,
        schedule,
        timezone,
        skip_dates,
        status,
        expiry,
        profile,
        respect_manual,
        dnd,
        presence,
        restore,
        file: _,
    } = rule;
    let schedule = match schedule {
        Schedule::Calendar { times, days } => format!("at {times:?} on {days:?}"),
        Schedule::Cron(cron) => format!("cron {}", cron.as_str()),
    };
    let text = format!(
        "{token:?}|{user:?}|{schedule}|{timezone}|{skip_dates:?}|{status:?}|{expiry:?}|\
         {profile:?}|{respect_manual}|{dnd:?}|{presence:?}|{restore}"
    );
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    hash as i64
}

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

/// How a scheduler starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The daemon's start: it may have been down at the instants of firings it enqueued
    /// ahead.
    AfterDowntime,
    /// A reload of the running daemon: what waits in the queue is due as it stands.
    Reload,
}

/// Where a rule resumes at a start or reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// New to the daemon: from now.
    New,
    /// From its stored mark.
    Keep(DateTime<Utc>),
    /// From `to`, with its firings enqueued ahead after `to` superseded for `reason`.
    Rewind {
        /// The mark it resumes from.
        to: DateTime<Utc>,
        /// [`CONFIG_CHANGED`] or [`MISSED`].
        reason: &'static str,
    },
}

/// Where `rule` (fingerprint `print`) resumes at `now`, from its `stored` mark and, after
/// downtime, the instant of a firing enqueued ahead that is still unsent (`missed`).
///
/// A rule changed while a firing waited ahead is rewound to now, so that its new version fires
/// at its instants as if newly written (SPEC §4). A firing whose instant passed while the daemon
/// was down is decided again as if it had never been enqueued: it stays if it is the one the
/// catch-up rule applies, and is superseded otherwise.
pub fn resume(
    rule: &Rule,
    print: i64,
    stored: Option<RuleMark>,
    missed: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    catch_up: Duration,
) -> Resume {
    let Some(stored) = stored else {
        return Resume::New;
    };
    let changed = stored.fingerprint != Some(print);
    if let Some(at) = missed {
        let before = at - TimeDelta::milliseconds(1);
        if changed {
            return Resume::Rewind {
                to: before,
                reason: CONFIG_CHANGED,
            };
        }
        if firing_to_apply(rule, before, now, catch_up) != Some(at) {
            return Resume::Rewind {
                to: before,
                reason: MISSED,
            };
        }
    } else if changed && stored.until > now {
        return Resume::Rewind {
            to: now,
            reason: CONFIG_CHANGED,
        };
    }
    Resume::Keep(stored.until)
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
    wakers: Wakers,
    /// Per rule index, the instant up to which it has been scheduled.
    marks: Vec<DateTime<Utc>>,
    /// Per rule index, its [`fingerprint`], written with each mark.
    fingerprints: Vec<i64>,
    /// (next firing, rule index), earliest first.
    heap: BinaryHeap<Reverse<(DateTime<Utc>, usize)>>,
    /// Told whether each tick worked, for `/healthz`.
    metrics: Metrics,
}

impl Scheduler {
    /// Load every rule's mark and decide, per rule, where it resumes ([`resume`]): a rule
    /// new to the daemon starts from now, one changed or removed while a firing of it waited
    /// ahead is rewound (that firing superseded), and after downtime a firing enqueued ahead
    /// whose instant passed unsent is decided again by the catch-up rule.
    pub async fn new(
        rules: Arc<[Rule]>,
        queue: Queue,
        clock: Clock,
        catch_up: Duration,
        wakers: Wakers,
        start: Start,
    ) -> Result<Scheduler, QueueError> {
        let now = clock.now();
        let mut known = queue.rule_marks().await?;
        let mut missed = match start {
            Start::AfterDowntime => queue.unsent_ahead(now).await?,
            Start::Reload => HashMap::new(),
        };
        let mut marks = Vec::with_capacity(rules.len());
        let mut fingerprints = Vec::with_capacity(rules.len());
        let mut new_rules = Vec::new();
        let mut rewinds: HashMap<&'static str, Vec<(String, DateTime<Utc>)>> = HashMap::new();
        let mut rewound: HashMap<String, usize> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let print = fingerprint(rule);
            let stored = known.remove(&rule.name);
            let missed = missed.remove(&rule.name);
            let mark = match resume(rule, print, stored, missed, now, catch_up) {
                Resume::New => {
                    new_rules.push(Advance {
                        rule: rule.name.clone(),
                        until: now,
                        fingerprint: Some(print),
                        firing: None,
                    });
                    now
                }
                Resume::Keep(mark) => mark,
                Resume::Rewind { to, reason } => {
                    rewinds
                        .entry(reason)
                        .or_default()
                        .push((rule.name.clone(), to));
                    rewound.insert(rule.name.clone(), i);
                    to
                }
            };
            marks.push(mark);
            fingerprints.push(print);
        }
        // What is left are the marks of rules no longer configured: what waits for them goes.
        for (name, mark) in known {
            let to = match missed.remove(&name) {
                Some(at) => at - TimeDelta::milliseconds(1),
                None if mark.until > now => now,
                None => continue,
            };
            rewinds.entry(CONFIG_CHANGED).or_default().push((name, to));
        }
        for (reason, rules) in rewinds {
            let (superseded, now_marks) = queue.rewind_rules(&rules, reason, now).await?;
            // A rewind stops at a firing that already went further: resume from there.
            for (name, mark) in now_marks {
                if let Some(&i) = rewound.get(&name) {
                    marks[i] = mark;
                }
            }
            if superseded > 0 {
                tracing::info!(
                    rows = superseded,
                    reason,
                    "firings enqueued ahead superseded: {}",
                    match reason {
                        MISSED =>
                            "the daemon was down at their instant and catch_up does not apply them",
                        _ => "their rules changed or were removed",
                    }
                );
            }
        }
        let mut heap = BinaryHeap::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            if let Some(next) =
                next_firing(&rule.schedule, rule.timezone, &rule.skip_dates, marks[i])
            {
                heap.push(Reverse((next, i)));
            }
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
            fingerprints,
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

    /// Enqueue everything due by [`AHEAD`] from the current wall-clock time, in one
    /// transaction. Returns the ids enqueued.
    pub async fn tick(&mut self) -> Result<Vec<i64>, QueueError> {
        let now = self.clock.now();
        let horizon = now + ahead();
        let mut due = Vec::new();
        while let Some(Reverse((at, i))) = self.heap.peek().copied() {
            if at > horizon {
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
            .map(|&(at, i)| {
                let rule = &self.rules[i];
                // Ahead of its instant, the firing itself; at or past it, what the gap since
                // the mark calls for.
                let (until, fired) = if at > now {
                    (at, Some(at))
                } else {
                    let fired = firing_to_apply(rule, self.marks[i], now, self.catch_up);
                    (now, fired)
                };
                let firing = fired.map(|fired| NewUpdate {
                    rule: Some(rule.name.clone()),
                    target: Target {
                        token: rule.token.clone(),
                        user: rule.user.clone(),
                    },
                    fire_at: fired,
                    patch: patch_for(rule, fired),
                    respect_manual: rule.respect_manual,
                    restore: rule.restore,
                });
                Advance {
                    rule: rule.name.clone(),
                    until,
                    fingerprint: Some(self.fingerprints[i]),
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
        {
            let wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            for (&(_, i), id) in due.iter().zip(&ids) {
                if let (Some(_), Some(w)) = (id, wakers.get(&self.rules[i].token)) {
                    w.notify_one();
                }
            }
        }
        let mut enqueued = Vec::new();
        for ((at, i), (advance, id)) in due.into_iter().zip(advances.iter().zip(ids)) {
            let rule = &self.rules[i];
            self.marks[i] = self.marks[i].max(advance.until);
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
                        Some(at) => self.clock.nap_until(at - ahead()),
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
