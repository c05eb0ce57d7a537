//! The scheduler over a real SQLite file with an injected wall clock: firings become rows
//! exactly once, new rules start from now, catch-up after downtime follows SPEC §4, and a
//! jump of the wall clock (a suspend, or the clock set forward) is noticed.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use slack_statusd::clock::{Clock, MAX_NAP};
use slack_statusd::config::{load_str, Config};
use slack_statusd::daemon::Scheduler;
use slack_statusd::queue::Queue;
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

async fn scheduler(config: &Config, queue: &Queue, clock: &Clock) -> Scheduler {
    Scheduler::new(
        config.rules.clone(),
        queue.clone(),
        clock.clone(),
        config.catch_up,
        HashMap::new(),
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
