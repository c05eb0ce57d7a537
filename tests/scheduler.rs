//! The scheduler over a real SQLite file with an injected wall clock: firings become rows
//! exactly once, new rules start from now, catch-up after downtime follows SPEC §4, and a
//! jump of the wall clock (a suspend, or the clock set forward) is noticed.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use slack_statusd::clock::{Clock, MAX_NAP};
use slack_statusd::config::{load_str, Config};
use slack_statusd::daemon::{Scheduler, Start, AHEAD};
use slack_statusd::queue::{Queue, State, Update};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// One hourly rule (at minute 0) in UTC with a 2 h expiry.
fn hourly(catch_up: &str) -> Config {
    let text = format!(
        "timezone = \"UTC\"\ncatch_up = \"{catch_up}\"\n[tokens.me]\ntoken_env = \"NOPE\"\n\
         [[rules]]\nname = \"hourly\"\ntoken = \"me\"\ncron = \"0 * * * *\"\n\
         status_text = \"tick\"\nexpire_after = \"2h\"\n"
    );
    load_str(Path::new("test.toml"), &text).unwrap()
}

async fn open() -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(&dir.path().join("q.db"), true).await.unwrap();
    (dir, q)
}

/// A scheduler as the daemon starts it.
async fn scheduler(config: &Config, queue: &Queue, clock: &Clock) -> Scheduler {
    scheduler_on(config, queue, clock, Start::AfterDowntime).await
}

async fn scheduler_on(config: &Config, queue: &Queue, clock: &Clock, start: Start) -> Scheduler {
    Scheduler::new(
        config.rules.clone(),
        queue.clone(),
        clock.clone(),
        config.catch_up,
        Default::default(),
        start,
    )
    .await
    .unwrap()
}

async fn fired(queue: &Queue) -> Vec<DateTime<Utc>> {
    let mut v: Vec<_> = queue
        .list(&[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.fire_at)
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_new_rule_starts_from_now_and_fires_once_per_instant() {
    let (_d, q) = open().await;
    let config = hourly("6h");
    let clock = Clock::test(at("2026-11-25T09:30:00Z"));
    let mut s = scheduler(&config, &q, &clock).await;
    assert_eq!(s.next_firing(), Some(at("2026-11-25T10:00:00Z")));
    assert!(
        s.tick().await.unwrap().is_empty(),
        "09:00 was before the rule was known"
    );

    clock.jump(TimeDelta::minutes(30));
    assert_eq!(s.tick().await.unwrap().len(), 1);
    assert!(s.tick().await.unwrap().is_empty(), "never twice");
    // A second scheduler over the same database (a restart) does not enqueue it again.
    let mut again = scheduler(&config, &q, &clock).await;
    assert!(again.tick().await.unwrap().is_empty());
    assert_eq!(fired(&q).await, vec![at("2026-11-25T10:00:00Z")]);
    let row = &q.list(&[]).await.unwrap()[0];
    let status = row.patch.status.as_ref().unwrap();
    assert_eq!(
        status.expiration,
        at("2026-11-25T12:00:00Z").timestamp(),
        "firing + expire_after"
    );
}

#[tokio::test]
async fn after_downtime_only_the_most_recent_missed_firing_is_applied_once() {
    let (_d, q) = open().await;
    let config = hourly("6h");
    // The daemon last ran at 06:10; it restarts at 09:30. Missed: 07:00, 08:00, 09:00.
    q.advance_rule(
        "hourly",
        at("2026-11-25T06:10:00Z"),
        None,
        at("2026-11-25T06:10:00Z"),
    )
    .await
    .unwrap();
    let clock = Clock::test(at("2026-11-25T09:30:00Z"));
    let mut s = scheduler(&config, &q, &clock).await;
    assert_eq!(s.tick().await.unwrap().len(), 1);
    assert_eq!(fired(&q).await, vec![at("2026-11-25T09:00:00Z")]);
    let mut restarted = scheduler(&config, &q, &clock).await;
    assert!(
        restarted.tick().await.unwrap().is_empty(),
        "a second restart sends nothing again"
    );
}

/// A daily rule at 07:00 UTC.
fn daily(catch_up: &str, expiry: &str) -> Config {
    let text = format!(
        "timezone = \"UTC\"\ncatch_up = \"{catch_up}\"\n[tokens.me]\ntoken_env = \"NOPE\"\n\
         [[rules]]\nname = \"daily\"\ntoken = \"me\"\nat = \"07:00\"\nstatus_text = \"x\"\n{expiry}\n"
    );
    load_str(Path::new("t.toml"), &text).unwrap()
}

/// Restart at `now` after the daemon last ran at 06:00, and return how many rows the first
/// tick enqueued.
async fn restart_after_downtime(config: &Config, now: &str) -> usize {
    let (_d, q) = open().await;
    q.advance_rule(
        "daily",
        at("2026-11-25T06:00:00Z"),
        None,
        at("2026-11-25T06:00:00Z"),
    )
    .await
    .unwrap();
    let clock = Clock::test(at(now));
    let mut s = scheduler(config, &q, &clock).await;
    s.tick().await.unwrap().len()
}

#[tokio::test]
async fn missed_firings_outside_catch_up_or_already_expired_are_not_applied() {
    let cases = [
        // (catch_up, expiry, restart at, applied)
        ("6h", "expire_after = \"2h\"", "2026-11-25T08:59:00Z", 1),
        ("6h", "expire_after = \"2h\"", "2026-11-25T09:00:00Z", 0), // expired at 09:00
        ("6h", "expire_at = \"12:00\"", "2026-11-25T11:00:00Z", 1),
        ("1h", "", "2026-11-25T07:59:00Z", 1),
        ("1h", "", "2026-11-25T08:01:00Z", 0), // older than catch_up
        ("0s", "", "2026-11-25T07:00:40Z", 1), // under a minute late is on time
        ("0s", "", "2026-11-25T07:02:00Z", 0), // catching up disabled
    ];
    for (catch_up, expiry, now, want) in cases {
        let got = restart_after_downtime(&daily(catch_up, expiry), now).await;
        assert_eq!(
            got, want,
            "catch_up {catch_up}, {expiry:?}, restart at {now}"
        );
    }
}

/// A suspend from 09:30 to 12:15 under the real `Scheduler::run`: tokio's clock is paused, so
/// the monotonic clock moves only when nothing is left to do, and the wall clock jumps by 165
/// minutes while the scheduler naps. The 12:00 firing must be enqueued within one nap of
/// paused time; a scheduler that slept on the monotonic clock until its next firing (10:00,
/// half an hour away when it went to sleep) would take 30 minutes.
#[test]
fn a_wall_clock_jump_is_noticed_within_one_nap() {
    // The queue lives on a runtime of its own, on real time. Its pool keeps housekeeping timers
    // (idle connections, lifetimes) on the runtime that opens it; on the paused runtime, every
    // moment SQLite works on sqlx's thread leaves the runtime idle, tokio skips paused time
    // ahead to the next timer, and those timers would run the clock ahead ten minutes a query.
    let real = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (_d, q) = real.block_on(open());
    // Paused only while the scheduler runs (see `jump_while_napping`).
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    paused.block_on(jump_while_napping(&q));
}

/// The body of [`a_wall_clock_jump_is_noticed_within_one_nap`], on paused time. While the
/// scheduler runs, the test does no I/O of its own: waiting for the database would leave the
/// runtime idle, and paused time would race through the scheduler's naps meanwhile. It watches
/// the next firing the scheduler publishes after every tick instead.
async fn jump_while_napping(q: &Queue) {
    let config = hourly("6h");
    let clock = Clock::test(at("2026-11-25T09:30:00Z"));
    // Built on real time: its reads wait for a pooled connection under a 15 s acquire
    // timeout, which paused time would skip straight to whenever SQLite's thread is slow.
    let s = scheduler(&config, q, &clock).await;
    tokio::time::pause();
    let shutdown = CancellationToken::new();
    let (next_tx, mut next_rx) = watch::channel(None);
    let run = tokio::spawn(s.run(shutdown.clone(), next_tx));
    // The first tick is done and the scheduler naps: nothing was due at 09:30.
    next_rx.changed().await.unwrap();
    assert_eq!(*next_rx.borrow(), Some(at("2026-11-25T10:00:00Z")));

    let jumped = tokio::time::Instant::now();
    clock.jump(TimeDelta::minutes(165));
    // The scheduler publishes 13:00 once the tick that enqueued 12:00 has committed.
    next_rx
        .wait_for(|next| *next == Some(at("2026-11-25T13:00:00Z")))
        .await
        .unwrap();
    let took = jumped.elapsed();
    shutdown.cancel();
    run.await.unwrap();
    tokio::time::resume();
    // tokio's timers have a resolution of 1 ms: a nap can end up to a millisecond late.
    assert!(
        took <= MAX_NAP + std::time::Duration::from_millis(1),
        "the jump was noticed after {took:?} of monotonic time, more than one nap ({MAX_NAP:?})"
    );
    assert_eq!(
        fired(q).await,
        vec![at("2026-11-25T12:00:00Z")],
        "the most recent missed firing, once"
    );
    // Closed here, not on the runtime that opened it: the pool waits for its connections to
    // come back, and the last ones come back through tasks spawned on this runtime.
    q.close().await;
}

/// The rows of `queue`, oldest first, as (fire_at, state, last_error, status text).
async fn all_rows(queue: &Queue) -> Vec<(DateTime<Utc>, State, Option<String>, String)> {
    let mut rows: Vec<Update> = queue.list(&[]).await.unwrap();
    rows.sort_by_key(|r| r.id);
    rows.into_iter()
        .map(|r| {
            let text = r.patch.status.map(|s| s.text).unwrap_or_default();
            (r.fire_at, r.state, r.last_error, text)
        })
        .collect()
}

/// [`hourly`] with another status text: the same rule, changed.
fn hourly_saying(text: &str) -> Config {
    let text = format!(
        "timezone = \"UTC\"\ncatch_up = \"6h\"\n[tokens.me]\ntoken_env = \"NOPE\"\n\
         [[rules]]\nname = \"hourly\"\ntoken = \"me\"\ncron = \"0 * * * *\"\n\
         status_text = \"{text}\"\nexpire_after = \"2h\"\ndnd = true\n"
    );
    load_str(Path::new("test.toml"), &text).unwrap()
}

/// The rule is known from 09:00, and the 10:00 firing has just been enqueued ahead at
/// 09:59:59 (one row for the status, one for the DND snooze).
async fn enqueued_ahead(config: &Config) -> (tempfile::TempDir, Queue, Clock) {
    let (d, q) = open().await;
    let clock = Clock::test(at("2026-11-25T09:00:00Z"));
    let mut s = scheduler(config, &q, &clock).await;
    clock.jump(TimeDelta::minutes(59) + TimeDelta::seconds(59));
    assert_eq!(s.tick().await.unwrap().len(), 1);
    (d, q, clock)
}

#[tokio::test]
async fn a_firing_is_enqueued_ahead_due_at_its_instant_and_only_once() {
    let (_d, q) = open().await;
    let config = hourly("6h");
    let clock = Clock::test(at("2026-11-25T09:30:00Z"));
    let mut s = scheduler(&config, &q, &clock).await;
    let before = at("2026-11-25T10:00:00Z") - TimeDelta::from_std(AHEAD).unwrap();
    // The test clock also follows real time: a margin for the ticks' own queries.
    clock.jump(before - clock.now() - TimeDelta::milliseconds(500));
    assert!(s.tick().await.unwrap().is_empty(), "not yet AHEAD before");
    // (`jump` counts whole milliseconds.)
    clock.jump(before - clock.now() + TimeDelta::milliseconds(2));
    assert_eq!(s.tick().await.unwrap().len(), 1);
    let row = &q.list(&[]).await.unwrap()[0];
    assert_eq!(
        (row.fire_at, row.not_before),
        (at("2026-11-25T10:00:00Z"), at("2026-11-25T10:00:00Z"))
    );
    assert_eq!(s.next_firing(), Some(at("2026-11-25T11:00:00Z")));
    // Neither the same scheduler, nor a reload, nor a restart before the instant enqueues it
    // again, and none of them touches it.
    assert!(s.tick().await.unwrap().is_empty());
    for start in [Start::Reload, Start::AfterDowntime] {
        let mut again = scheduler_on(&config, &q, &clock, start).await;
        assert!(again.tick().await.unwrap().is_empty(), "{start:?}");
    }
    clock.jump(TimeDelta::seconds(2));
    let mut at_instant = scheduler_on(&config, &q, &clock, Start::Reload).await;
    assert!(at_instant.tick().await.unwrap().is_empty());
    assert_eq!(q.count(State::Pending).await.unwrap(), 1);
}

#[tokio::test]
async fn a_reload_that_changes_a_rule_supersedes_its_firing_enqueued_ahead_with_every_part() {
    let (_d, q, clock) = enqueued_ahead(&hourly_saying("old")).await;
    let ten = at("2026-11-25T10:00:00Z");
    assert_eq!(q.count(State::Pending).await.unwrap(), 2, "status and DND");

    // Unchanged: left alone.
    let mut same = scheduler_on(&hourly_saying("old"), &q, &clock, Start::Reload).await;
    assert!(same.tick().await.unwrap().is_empty());
    assert_eq!(q.count(State::Pending).await.unwrap(), 2);

    // Changed: both parts superseded, and the new version fires at 10:00 as if newly written.
    let mut changed = scheduler_on(&hourly_saying("new"), &q, &clock, Start::Reload).await;
    assert_eq!(changed.tick().await.unwrap().len(), 1);
    let rows = all_rows(&q).await;
    let superseded: Vec<_> = rows.iter().filter(|r| r.1 == State::Superseded).collect();
    assert_eq!(superseded.len(), 2, "{rows:?}");
    assert!(superseded
        .iter()
        .all(|r| r.0 == ten && r.2.as_deref() == Some("config_changed")));
    let pending: Vec<_> = rows.iter().filter(|r| r.1 == State::Pending).collect();
    assert_eq!(pending.len(), 2, "{rows:?}");
    assert!(pending.iter().all(|r| r.0 == ten));
    assert!(pending.iter().any(|r| r.3 == "new"));
    // A restart on the new version changes nothing more.
    let mut restarted = scheduler(&hourly_saying("new"), &q, &clock).await;
    assert!(restarted.tick().await.unwrap().is_empty());
    assert_eq!(q.count(State::Pending).await.unwrap(), 2);
}

#[tokio::test]
async fn a_reload_that_removes_a_rule_supersedes_its_firing_enqueued_ahead() {
    let (_d, q, clock) = enqueued_ahead(&hourly_saying("old")).await;
    let none = load_str(
        Path::new("test.toml"),
        "timezone = \"UTC\"\n[tokens.me]\ntoken_env = \"NOPE\"\n",
    )
    .unwrap();
    scheduler_on(&none, &q, &clock, Start::Reload).await;
    assert_eq!(q.count(State::Pending).await.unwrap(), 0);
    assert_eq!(q.count(State::Superseded).await.unwrap(), 2);
}

#[tokio::test]
async fn after_downtime_a_firing_enqueued_ahead_is_decided_again_by_the_catch_up_rule() {
    let ten = at("2026-11-25T10:00:00Z");
    // Down over its instant, back within the on-time grace: the row is the one catch-up
    // applies, and stays.
    let (_d, q, clock) = enqueued_ahead(&hourly_saying("old")).await;
    clock.jump(TimeDelta::seconds(31));
    let mut s = scheduler(&hourly_saying("old"), &q, &clock).await;
    assert!(s.tick().await.unwrap().is_empty());
    assert_eq!(q.count(State::Pending).await.unwrap(), 2);

    // Back at 12:30: 12:00 is the most recent firing of the gap; 10:00 is not applied.
    let (_d, q, clock) = enqueued_ahead(&hourly_saying("old")).await;
    clock.jump(at("2026-11-25T12:30:00Z") - clock.now());
    let mut s = scheduler(&hourly_saying("old"), &q, &clock).await;
    assert_eq!(s.tick().await.unwrap().len(), 1);
    let rows = all_rows(&q).await;
    let pending: Vec<_> = rows.iter().filter(|r| r.1 == State::Pending).collect();
    assert!(
        pending.iter().all(|r| r.0 == at("2026-11-25T12:00:00Z")),
        "{rows:?}"
    );
    assert!(rows
        .iter()
        .filter(|r| r.0 == ten)
        .all(|r| r.1 == State::Superseded && r.2.as_deref() == Some("missed")));

    // Back at 10:30 on a changed rule: the old 10:00 goes, the new one is its catch-up.
    let (_d, q, clock) = enqueued_ahead(&hourly_saying("old")).await;
    clock.jump(at("2026-11-25T10:30:00Z") - clock.now());
    let mut s = scheduler(&hourly_saying("new"), &q, &clock).await;
    assert_eq!(s.tick().await.unwrap().len(), 1);
    let rows = all_rows(&q).await;
    assert!(
        rows.iter()
            .filter(|r| r.1 == State::Pending)
            .all(|r| r.0 == ten && (r.3 == "new" || r.3.is_empty())),
        "{rows:?}"
    );
    assert_eq!(q.count(State::Superseded).await.unwrap(), 2);

    // A reload at 10:00:31 (the daemon was up; its worker is merely behind) leaves it alone.
    let (_d, q, clock) = enqueued_ahead(&hourly_saying("old")).await;
    clock.jump(TimeDelta::hours(3));
    scheduler_on(&hourly_saying("old"), &q, &clock, Start::Reload).await;
    assert_eq!(q.count(State::Pending).await.unwrap(), 2);
}
