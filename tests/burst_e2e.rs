//! Bursts within one token, end to end (SPEC §4, issue 14): the real binary, one admin
//! token, every user's rule due at one instant, and a fake Slack that takes about 100 ms to
//! answer. The first window's requests are in the air together, not one round trip after
//! another; a 429 in the middle of a burst stops every later start until its Retry-After
//! has passed, while the requests already in flight finish.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::{wait_for, FakeSlack, Received, Scripted, Setup};

const TOKEN: &str = "xoxp-admin";

/// A whole second at least `lead` ahead, as a rule's `at` in UTC, and that instant.
fn second_ahead(lead: Duration) -> (String, DateTime<Utc>) {
    let t = Utc::now() + TimeDelta::from_std(lead).unwrap();
    let t = t + TimeDelta::milliseconds(1000 - i64::from(t.timestamp_subsec_millis()));
    (t.format("%H:%M:%S").to_string(), t)
}

/// A config for `users` users of one admin token, each with a rule due at `at`, and
/// `limits` (the body of `[limits]`).
fn config(users: usize, limits: &str, at: &str) -> String {
    let mut body = format!(
        "timezone = \"UTC\"\n[limits]\n{limits}\n[tokens.admin]\ntoken_env = \"BURST_TOKEN\"\n"
    );
    for i in 0..users {
        let _ = write!(
            body,
            "[[rules]]\nname = \"u{i:02}\"\ntoken = \"admin\"\nuser = \"U{i:02}\"\nat = \"{at}\"\n\
             status_text = \"Burst {i}\"\nstatus_emoji = \":zap:\"\n"
        );
    }
    body
}

/// Requests that arrived before `r` was answered and were answered after it arrived: in
/// the air together with it (itself included).
fn overlapping(all: &[Received], r: &Received) -> usize {
    all.iter()
        .filter(|o| o.at < r.answered && r.at < o.answered)
        .count()
}

async fn accepted(slack: &FakeSlack, n: usize, deadline: Duration) {
    wait_for(&format!("{n} statuses set"), deadline, || {
        slack
            .received()
            .iter()
            .filter(|r| r.status == 200 && r.profile.get("status_text").is_some())
            .count()
            >= n
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_users_at_one_instant_fly_together_within_the_limits() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(6), &[TOKEN]).await;
    slack.set_response_delay_range(Duration::from_millis(80), Duration::from_millis(120));
    let (at, _) = second_ahead(Duration::from_secs(2));
    let setup = Setup::new(&slack, &config(60, "per_token = 30\nwindow = \"6s\"", &at));
    let mut child = setup.spawn("daemon.log", &[("BURST_TOKEN", TOKEN)]);
    setup.wait_started("daemon.log").await;
    accepted(&slack, 60, Duration::from_secs(20)).await;
    common::stop(&mut child).await;

    let received = slack.received();
    assert_eq!(slack.limit_429s(), 0, "no limit exceeded");
    assert_eq!(received.len(), 60, "one request per user");
    let mut by_arrival = received.clone();
    by_arrival.sort_by_key(|r| r.at);
    let first_burst = &by_arrival[..30];
    let most = first_burst
        .iter()
        .map(|r| overlapping(first_burst, r))
        .max()
        .unwrap();
    assert!(
        most >= 10,
        "the first burst's requests were in the air together: at most {most} at once"
    );
    // The second window opens one window after the first start, not before.
    let gap = by_arrival[30].at - by_arrival[0].at;
    assert!(gap >= Duration::from_secs(6), "second burst after {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_mid_burst_stops_every_later_start_until_retry_after() {
    let slack = FakeSlack::start(10, 60, Duration::from_secs(2), &[TOKEN]).await;
    slack.set_response_delay(Duration::from_millis(100));
    // Five at a time and room in the window for all: only the pause can hold a start back.
    // The fifth request to arrive is told to wait a second; its answer comes back (after
    // 150 ms) while the next flights, launched at 100 ms, are in the air.
    let mut script: Vec<Scripted> = (0..4).map(|_| Scripted::Normal).collect();
    script.push(Scripted::Delay(
        Duration::from_millis(150),
        Box::new(Scripted::Reply(
            429,
            Some("1".into()),
            r#"{"ok":false,"error":"ratelimited"}"#.into(),
        )),
    ));
    slack.script(TOKEN, script);
    let (at, _) = second_ahead(Duration::from_secs(2));
    let limits = "per_token = 60\nin_flight = 5\nwindow = \"2s\"";
    let setup = Setup::new(&slack, &config(40, limits, &at));
    let mut child = setup.spawn("daemon.log", &[("BURST_TOKEN", TOKEN)]);
    setup.wait_started("daemon.log").await;
    accepted(&slack, 40, Duration::from_secs(20)).await;
    common::stop(&mut child).await;

    let received = slack.received();
    let limited = received
        .iter()
        .find(|r| r.status == 429)
        .expect("the scripted 429");
    assert_eq!(
        received.iter().filter(|r| r.status == 429).count(),
        1,
        "no 429 but the scripted one"
    );
    let in_flight = received
        .iter()
        .filter(|o| o.at < limited.answered && limited.answered < o.answered)
        .count();
    assert!(
        in_flight >= 2,
        "other requests were in flight when the 429 came back: {in_flight}"
    );
    let wait_ends = limited.answered + Duration::from_secs(1);
    let early: Vec<Instant> = received
        .iter()
        .map(|r| r.at)
        .filter(|t| *t > limited.answered + common::GRACE && *t < wait_ends)
        .collect();
    assert!(
        early.is_empty(),
        "{} requests started during the Retry-After",
        early.len()
    );
    assert_eq!(slack.early_after_429(), 0);
    // Every user got their status once, the limited one on its retry.
    for i in 0..40 {
        let shown = slack.profile(TOKEN, &format!("U{i:02}")).unwrap();
        assert_eq!(shown["status_text"], format!("Burst {i}"));
    }
}
