//! The calendar source (SPEC §5): one task per `[[calendars]]` entry. It fetches the feed
//! every `poll` (conditionally, backing off after failures), keeps the last good copy in the
//! database, and after each fetch turns the occurrences into queue rows: the pure
//! [`calendar::firings`] says what the calendar wants from now on, the pure
//! [`calendar::reconcile`] compares that with the rows already queued, and the queue applies
//! the plan in one transaction. From there on a calendar's row is like a rule's: committed
//! before it is sent, merged, throttled, in order per target.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::calendar::{self, Existing, Firing, Occurrence, RowState};
use crate::clock::Clock;
use crate::config::{Calendar, Feed};
use crate::feed::{backoff, Fetched, Fetcher, Validators};
use crate::observe::{FetchOutcome, Metrics};
use crate::profile::{Patch, Status};
use crate::queue::{
    CalendarCopy, CalendarFiring, CalendarRow, NewUpdate, Queue, QueueError, State, Target,
};

/// A copy whose window ends sooner than this before `now + horizon` is fetched again
/// unconditionally: a feed that never changes (every fetch a 304) would otherwise never
/// have its later occurrences expanded.
const STALE_WINDOW: TimeDelta = TimeDelta::days(1);

/// How often a calendar read from a local file is looked at: a look that finds the file
/// unchanged is one `fstat` (the fetcher compares its pseudo ETag), so an edit shows within
/// seconds, as an edit of the config does, without waiting for `poll`.
pub const FILE_CHECK: Duration = Duration::from_secs(2);

/// One fetched feed at a time is parsed, stored and applied. The work is CPU and the one
/// writer's, so doing ten at once is no faster; but each holds its body, its occurrences and
/// their serialized copy until the writer has them, and a daemon with many calendars, all
/// fetched at start-up, would peak at the sum of them and keep the heap it grew to
/// fragmented (issue 12, 5c). Fetches themselves still overlap: they wait on the network.
static DIGEST: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// What the stored copy holds besides the occurrences: what they were expanded with, so a
/// reload that changes the zone, the addresses or the horizon re-fetches instead of trusting
/// a 304 for occurrences expanded otherwise.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Stored {
    /// The expansion's settings (see [`settings_of`]).
    settings: String,
    /// The occurrences, private titles already dropped by the parser.
    occurrences: Vec<Occurrence>,
}

/// One calendar's task.
pub struct CalendarTask {
    calendar: Calendar,
    fetcher: Fetcher,
    queue: Queue,
    clock: Clock,
    /// Wakes the token's worker when rows were enqueued (looked up at each wake: a reload
    /// may have restarted the worker).
    wakers: super::Wakers,
    /// The last good copy, until it has been applied: from then on its rows are in the
    /// queue and the copy in the database (where a restart or a reload starts from), and
    /// nothing reads it again before the next fetch brings a new one.
    occurrences: Vec<Occurrence>,
    /// The window it covers.
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Its validators, when the next fetch may be conditional.
    validators: Option<Validators>,
    /// Fetches failed in a row.
    failures: u32,
    /// The copy has not been applied since it last changed (the database refused it): the
    /// next fetch applies it even if the feed is unchanged.
    unapplied: bool,
    /// When the database last heard that the feed answered (see [`Self::note_fetch`]).
    noted: Option<DateTime<Utc>>,
    /// Where fetches and queue writes are counted (SPEC §7).
    metrics: Metrics,
}

impl CalendarTask {
    /// A task for `calendar`, starting from the copy kept in the database.
    pub(super) async fn new(
        calendar: Calendar,
        fetcher: Fetcher,
        queue: Queue,
        clock: Clock,
        wakers: super::Wakers,
        metrics: Metrics,
    ) -> Result<CalendarTask, QueueError> {
        let mut task = CalendarTask {
            calendar,
            fetcher,
            queue,
            clock,
            wakers,
            occurrences: Vec::new(),
            window: None,
            validators: None,
            failures: 0,
            unapplied: false,
            noted: None,
            metrics,
        };
        if let Some(copy) = task.queue.calendar_copy(&task.calendar.name).await? {
            task.restore_copy(&copy);
            // The last success survives a restart: the copy is that fetch's.
            task.metrics
                .calendar_success(&task.calendar.name, copy.fetched_at);
        }
        Ok(task)
    }

    /// Fetch and apply every `poll` until `shutdown`. The stored copy is applied first, so a
    /// restart without network still shows the event running now.
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        if self.window.is_some() {
            self.apply_logged().await;
        }
        loop {
            let wait = tokio::select! {
                wait = self.poll_once() => wait,
                _ = shutdown.cancelled() => return,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// One fetch and, if it gave anything, one apply. Returns how long to wait before the
    /// next one.
    pub async fn poll_once(&mut self) -> Duration {
        let name = self.calendar.name.clone();
        let (feed, warning) = match self.calendar.feed() {
            Ok(f) => f,
            Err(e) => {
                self.failures += 1;
                self.metrics
                    .calendar_fetch(&name, FetchOutcome::Error, self.clock.now());
                tracing::warn!(calendar = %name, "{e}; the last good copy stays in use");
                return backoff(self.failures, self.calendar.poll);
            }
        };
        if let Some(w) = warning {
            tracing::warn!(calendar = %name, "{w}");
        }
        let now = self.clock.now();
        let previous = self.validators.as_ref().filter(|_| self.window_fresh(now));
        match self.fetcher.fetch(&feed, previous).await {
            Err(e) => {
                self.failures += 1;
                self.metrics.calendar_fetch(&name, FetchOutcome::Error, now);
                let wait = backoff(self.failures, self.calendar.poll);
                tracing::warn!(
                    calendar = %name, host = %shown(&feed), failures = self.failures,
                    "{e} (next try in {})", humantime::format_duration(wait)
                );
                return wait;
            }
            Ok(Fetched::NotModified) => {
                // The copy was applied when it came (or at start): unchanged occurrences
                // want nothing new.
                self.failures = 0;
                self.metrics
                    .calendar_fetch(&name, FetchOutcome::NotModified, self.clock.now());
                tracing::debug!(calendar = %name, "not modified");
                self.note_fetch().await;
                if self.unapplied {
                    self.apply_logged().await;
                }
            }
            Ok(Fetched::Body { bytes, validators }) => {
                let _turn = DIGEST.acquire().await.expect("DIGEST is never closed");
                self.failures = 0;
                let now = self.clock.now();
                self.metrics.calendar_fetch(&name, FetchOutcome::Ok, now);
                self.take_feed(&bytes, now);
                self.validators = Some(validators);
                match self.store(now).await {
                    Ok(()) => self.noted = Some(now),
                    Err(e) => {
                        tracing::error!(calendar = %name, error = %e, "cannot keep the calendar's copy in the database")
                    }
                }
                self.apply_logged().await;
                // The feed's bytes and the parse are gone: give their pages back (see
                // `release_freed_memory`), or ten calendars' fetches keep megabytes each.
                super::release_freed_memory();
            }
        }
        match feed {
            Feed::File(_) => self.calendar.poll.min(FILE_CHECK),
            Feed::Url(_) => self.calendar.poll,
        }
    }

    /// Note in the database that the feed answered "not modified", at most once per `poll`:
    /// a local file is looked at every [`FILE_CHECK`], and an idle daemon should not write
    /// every two seconds to say that nothing changed.
    async fn note_fetch(&mut self) {
        let now = self.clock.now();
        let poll = TimeDelta::from_std(self.calendar.poll).unwrap_or(TimeDelta::MAX);
        if self.noted.is_some_and(|at| now - at < poll) {
            return;
        }
        match self
            .queue
            .touch_calendar_copy(&self.calendar.name, now)
            .await
        {
            Ok(()) => self.noted = Some(now),
            Err(e) => {
                tracing::error!(calendar = %self.calendar.name, error = %e, "cannot note the fetch in the database")
            }
        }
    }

    /// Parse and expand a fetched feed into the copy, logging what was skipped.
    fn take_feed(&mut self, bytes: &[u8], now: DateTime<Utc>) {
        let read = self.calendar.read(bytes, now);
        for w in &read.warnings {
            tracing::warn!(
                "skipped or read by a fallback: {}",
                self.calendar.describe(w)
            );
        }
        tracing::info!(
            calendar = %self.calendar.name,
            events = read.events,
            occurrences = read.occurrences.len(),
            "calendar fetched"
        );
        self.occurrences = read.occurrences;
        self.window = Some(read.window);
    }

    /// Whether the copy still reaches far enough ahead for a 304 to be trusted.
    fn window_fresh(&self, now: DateTime<Utc>) -> bool {
        let (_, wanted_to) = self.calendar.window(now);
        self.window
            .is_some_and(|(_, to)| to + STALE_WINDOW >= wanted_to)
    }

    /// Take the copy kept in the database, unless it was expanded with other settings (then
    /// its occurrences are still used until a fetch succeeds, but not its validators).
    fn restore_copy(&mut self, copy: &CalendarCopy) {
        let Ok(stored) = serde_json::from_str::<Stored>(&copy.occurrences) else {
            tracing::warn!(calendar = %self.calendar.name, "the stored copy of the calendar cannot be read; it is fetched again");
            return;
        };
        let same = stored.settings == settings_of(&self.calendar);
        self.occurrences = stored.occurrences;
        self.window = Some(copy.window);
        self.validators = if same {
            serde_json::from_str(&copy.validators).ok()
        } else {
            None
        };
    }

    /// Keep the copy in the database.
    async fn store(&self, now: DateTime<Utc>) -> Result<(), QueueError> {
        let Some(window) = self.window else {
            return Ok(());
        };
        let stored = Stored {
            settings: settings_of(&self.calendar),
            occurrences: self.occurrences.clone(),
        };
        let copy = CalendarCopy {
            occurrences: serde_json::to_string(&stored).expect("occurrences serialize"),
            validators: serde_json::to_string(&self.validators.clone().unwrap_or_default())
                .expect("validators serialize"),
            window,
            fetched_at: now,
        };
        self.queue
            .store_calendar_copy(&self.calendar.name, &copy)
            .await
    }

    /// [`Self::apply`], with its failure logged: the next poll tries again.
    async fn apply_logged(&mut self) {
        let outcome = self.apply().await;
        self.unapplied = outcome.is_err();
        self.metrics.queue_write(outcome.is_ok());
        match outcome {
            // Kept only until applied (see `occurrences`): ten calendars of 200 events
            // otherwise hold ~2.7 MB of occurrences, each with its UID and title, that an idle
            // daemon never reads (issue 12's 20 MB).
            Ok(_) => self.occurrences = Vec::new(),
            Err(e) => {
                tracing::error!(calendar = %self.calendar.name, error = %e, "cannot queue the calendar's changes; trying again at the next poll");
            }
        }
    }

    /// Reconcile the copy with the queue at `now` and apply the plan. Returns how many rows
    /// were enqueued.
    pub async fn apply(&mut self) -> Result<usize, QueueError> {
        let now = self.clock.now();
        let target = Target {
            token: self.calendar.token.clone(),
            user: self.calendar.user.clone(),
        };
        let wanted = calendar::firings(&self.occurrences, &self.calendar, now);
        let rows: Vec<Existing> = self
            .queue
            .calendar_rows(&self.calendar.name)
            .await?
            .iter()
            .map(existing)
            .collect();
        let shown = self
            .queue
            .calendar_shown(&self.calendar.name, &target, now)
            .await?;
        let plan = calendar::reconcile(now, wanted, &rows, shown.as_ref().map(|s| s.key.as_str()));
        let mut enqueue: Vec<CalendarFiring> = plan
            .enqueue
            .iter()
            .map(|f| self.row_for(&target, f))
            .collect();
        // The event that shows went away: without `restore` its status is cleared now.
        let restore = self.calendar.restore;
        if plan.end_now && !restore {
            enqueue.push(self.end_now(&target, now));
        }
        let superseded = plan.supersede.len();
        let mut ids = self
            .queue
            .apply_calendar(&self.calendar.name, plan.supersede, enqueue, now)
            .await?;
        // With `restore`, its restore goes out now (with the usual checks), its snooze ends
        // and an `away` goes back to `auto` — after the event's own rows are superseded, so
        // that nothing of it is left to undo that; with no restore waiting, a clear.
        let mut restored_now = None;
        if plan.end_now && restore {
            restored_now = self.queue.end_temporary_now(&target, now).await?;
            if restored_now.is_none() {
                let clear = vec![self.end_now(&target, now)];
                ids.extend(
                    self.queue
                        .apply_calendar(&self.calendar.name, Vec::new(), clear, now)
                        .await?,
                );
            }
        }
        if superseded > 0 || !ids.is_empty() {
            tracing::info!(
                calendar = %self.calendar.name, enqueued = ids.len(), superseded,
                ended = plan.end_now, "calendar changes queued"
            );
        }
        if !ids.is_empty() || restored_now.is_some() {
            let waker = self
                .wakers
                .lock()
                .expect("wakers lock")
                .get(&self.calendar.token)
                .cloned();
            waker.as_deref().map(Notify::notify_one);
        }
        Ok(ids.len())
    }

    /// The queue row of one firing.
    fn row_for(&self, target: &Target, f: &Firing) -> CalendarFiring {
        self.row(target, f.at, f.patch.clone(), f.key.clone(), f.uid.clone())
    }

    /// The row that ends, at `now`, a status shown for an event that went away: a clear.
    fn end_now(&self, target: &Target, now: DateTime<Utc>) -> CalendarFiring {
        let clear = Patch {
            status: Some(Status::cleared()),
            ..Patch::default()
        };
        let key = format!("gone|{}", now.timestamp_millis());
        let mut row = self.row(target, now, clear, key, String::new());
        row.update.restore = false;
        row
    }

    /// A row of this calendar.
    fn row(
        &self,
        target: &Target,
        fire_at: DateTime<Utc>,
        patch: Patch,
        key: String,
        uid: String,
    ) -> CalendarFiring {
        CalendarFiring {
            update: NewUpdate {
                rule: None,
                target: target.clone(),
                fire_at,
                patch,
                respect_manual: self.calendar.respect_manual,
                restore: self.calendar.restore,
            },
            key,
            uid,
        }
    }
}

/// What an expansion depends on besides the feed.
fn settings_of(c: &Calendar) -> String {
    format!(
        "{}|{}|{}",
        c.timezone,
        c.horizon.as_secs(),
        c.email.join(",")
    )
}

/// A queue row as reconciling sees it.
fn existing(r: &CalendarRow) -> Existing {
    let state = match r.state {
        _ if r.calendar_changed => RowState::CalendarChanged,
        State::Pending | State::Held => RowState::Pending,
        State::InFlight => RowState::InFlight,
        State::Sent => RowState::Sent,
        _ => RowState::Finished,
    };
    Existing {
        id: r.id,
        key: r.key.clone(),
        at: r.fire_at,
        state,
    }
}

/// The feed's scheme and host, or the file, for messages.
fn shown(feed: &Feed) -> String {
    match feed {
        Feed::Url(u) => u.display().to_string(),
        Feed::File(p) => p.display().to_string(),
    }
}
