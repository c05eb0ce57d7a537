//! Concurrent sends within a token (SPEC §4), as a property: whatever the latencies, the
//! answers (rate limits, transient errors, a dead token) and the way flights interleave,
//! no window holds more starts than the limits allow, one target never has two requests in
//! flight, its updates reach Slack in firing order, nothing starts while the token has been
//! told to wait, and no row is lost.
//!
//! Each case runs a real worker (`Worker::run`, real clock) over a real SQLite file against
//! the fake Slack holding every answer back by a random time, while rows keep arriving.
//! Windows are scaled down to 600 ms so a case takes a second or two; `PROPTEST_CASES`
//! raises the count.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::{FakeSlack, Scripted};
use proptest::prelude::*;
use slack_statusd::config::{Limits, RetryPolicy};
use slack_statusd::queue::{Queue, State};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "xoxp-burst";
const WINDOW: Duration = Duration::from_millis(600);

/// One scripted answer of the fake, in the order requests arrive.
#[derive(Debug, Clone)]
enum Answer {
    Normal,
    /// `ok: false, ratelimited` with `Retry-After: 0.3`, under HTTP 200 so that the fake's own
    /// 429 count stays the count of limits it saw exceeded.
    RateLimited,
    Transient,
    Dead,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        12 => Just(Answer::Normal),
        1 => Just(Answer::RateLimited),
        2 => Just(Answer::Transient),
    ]
}

fn scripted(a: &Answer) -> Scripted {
    let reply =
        |ra: Option<&str>, body: &str| Scripted::Reply(200, ra.map(String::from), body.into());
    match a {
        Answer::Normal => Scripted::Normal,
        Answer::RateLimited => reply(Some("0.3"), r#"{"ok":false,"error":"ratelimited"}"#),
        Answer::Transient => reply(None, r#"{"ok":false,"error":"internal_error"}"#),
        Answer::Dead => reply(None, r#"{"ok":false,"error":"invalid_auth"}"#),
    }
}

/// The most starts in any span of `window` (a half-open `[s, s + window)`).
fn most_in_a_window(starts: &[DateTime<Utc>], window: TimeDelta) -> usize {
    starts
        .iter()
        .map(|s| {
            starts
                .iter()
                .filter(|x| **x >= *s && **x - *s < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

struct Case {
    per_user: u32,
    per_token: u32,
    in_flight: u32,
    /// Per row: its target user and the pause before it is enqueued.
    rows: Vec<(usize, Duration)>,
    answers: Vec<Answer>,
    /// Where in the answers the token dies, if it does.
    dead_at: Option<usize>,
    latency: (Duration, Duration),
}

async fn run_case(case: Case) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("q.db"), true).await.unwrap();
    let slack = FakeSlack::start(
        case.per_user as usize,
        case.per_token as usize,
        WINDOW,
        &[TOKEN],
    )
    .await;
    slack.set_response_delay_range(case.latency.0, case.latency.1);
    let mut answers = case.answers.clone();
    if let Some(at) = case.dead_at {
        answers.insert(at.min(answers.len()), Answer::Dead);
    }
    let script = answers
        .iter()
        .map(|a| match a {
            // The fake holds its normal answers back by itself.
            Answer::Normal => Scripted::Normal,
            a => {
                let held = rand::random_range(case.latency.0..=case.latency.1);
                Scripted::Delay(held, Box::new(scripted(a)))
            }
        })
        .collect();
    slack.script(TOKEN, script);
    let limits = Limits {
        per_user: case.per_user,
        per_token: case.per_token,
        in_flight: case.in_flight,
        window: WINDOW,
        ..Limits::DEFAULT
    };
    let retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(60),
    };
    let worker = common::slack_worker(
        "t",
        TOKEN,
        &slack,
        &queue,
        limits,
        retry,
        Duration::from_secs(5),
    )
    .await;
    let (wake, shutdown) = (Arc::new(Notify::new()), CancellationToken::new());
    let task = tokio::spawn(worker.run(wake.clone(), shutdown.clone()));

    // Rows keep arriving while earlier ones fly; the text names the row's place.
    for (i, (user, pause)) in case.rows.iter().enumerate() {
        tokio::time::sleep(*pause).await;
        let user = format!("U{user}");
        let text = format!("r{i:03}");
        let now = Utc::now();
        let row = common::status_update("t", Some(&user), &text, ":x:", now);
        queue.enqueue(&row, now).await.unwrap();
        wake.notify_one();
    }
    let settled = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let rows = queue.list(&[]).await.unwrap();
            if rows
                .iter()
                .all(|r| !matches!(r.state, State::Pending | State::InFlight))
            {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    let rows = settled.map_err(|_| TestCaseError::fail("rows did not settle in 30 s"))?;
    let since = Utc::now() - TimeDelta::hours(1);
    let sends = queue.sends_since("t", since).await.unwrap();
    queue.close().await;

    // No row lost.
    prop_assert_eq!(rows.len(), case.rows.len(), "rows");
    // The windows, from the daemon's own log of request starts.
    let window = TimeDelta::from_std(WINDOW).unwrap();
    let starts: Vec<DateTime<Utc>> = sends.iter().map(|s| s.2).collect();
    prop_assert!(
        most_in_a_window(&starts, window) <= case.per_token as usize,
        "token window: {} starts in {WINDOW:?}, limit {}",
        most_in_a_window(&starts, window),
        case.per_token
    );
    let mut by_user: BTreeMap<Option<String>, Vec<DateTime<Utc>>> = BTreeMap::new();
    for (_, user, at) in &sends {
        by_user.entry(user.clone()).or_default().push(*at);
    }
    for (user, starts) in &by_user {
        prop_assert!(
            most_in_a_window(starts, window) <= case.per_user as usize,
            "{user:?}: {} starts in a window, limit {}",
            most_in_a_window(starts, window),
            case.per_user
        );
    }
    // The fake: no limit exceeded, no request while told to wait.
    prop_assert_eq!(slack.limit_429s(), 0, "429s for exceeded limits");
    prop_assert_eq!(
        slack.early_after_429(),
        0,
        "requests before a Retry-After ended"
    );
    let received = slack.received();
    let in_flight_at_once = received
        .iter()
        .map(|r| {
            received
                .iter()
                .filter(|o| o.at <= r.at && r.at < o.answered)
                .count()
        })
        .max()
        .unwrap_or(0);
    prop_assert!(
        in_flight_at_once <= case.in_flight as usize,
        "{in_flight_at_once} in flight at once, in_flight = {}",
        case.in_flight
    );
    for user in by_user.keys() {
        let mine: Vec<_> = received.iter().filter(|r| r.user == *user).collect();
        // One target never has two requests in flight...
        for pair in mine.windows(2) {
            prop_assert!(
                pair[1].at >= pair[0].answered,
                "{user:?}: a request arrived before the previous one was answered"
            );
        }
        // ... and its updates go out in firing order (a retry may repeat the last one).
        let order: Vec<&str> = mine
            .iter()
            .filter_map(|r| r.profile["status_text"].as_str())
            .collect();
        prop_assert!(
            order.windows(2).all(|w| w[0] <= w[1]),
            "{user:?}: out of firing order: {order:?}"
        );
    }
    // What went out last for a target is the newest row sent for it.
    for r in rows.iter().filter(|r| r.state == State::Sent) {
        let user = r.target.user.clone().unwrap();
        let newest_sent = rows
            .iter()
            .filter(|o| o.target.user.as_deref() == Some(&user) && o.state == State::Sent)
            .map(|o| o.id)
            .max();
        if newest_sent == Some(r.id) {
            let shown = slack.profile(TOKEN, &user).unwrap();
            let text = r.patch.status.as_ref().unwrap().text.clone();
            prop_assert_eq!(
                shown["status_text"].as_str(),
                Some(text.as_str()),
                "{}",
                user
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(6)
    ))]

    #[test]
    fn concurrent_flights_keep_the_windows_the_order_and_every_row(
        per_user in 1u32..4,
        per_token in 2u32..8,
        in_flight in 1u32..10,
        users in 1usize..8,
        rows in prop::collection::vec((0usize..8, 0u64..40), 5..30),
        answers in prop::collection::vec(answer(), 0..30),
        dead_at in prop::option::weighted(0.15, 0usize..30),
        latency_ms in (0u64..40, 0u64..80),
    ) {
        let rows = rows
            .into_iter()
            .map(|(u, ms)| (u % users, Duration::from_millis(ms)))
            .collect();
        let (lo, extra) = latency_ms;
        let latency = (Duration::from_millis(lo), Duration::from_millis(lo + extra));
        let case = Case { per_user, per_token, in_flight, rows, answers, dead_at, latency };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_case(case))?;
    }
}

/// A slot that the sliding window frees while every other free slot is promised to a flight
/// about to start is used as soon as it frees, not a round trip later when some flight lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_freed_while_the_others_are_promised_is_used_before_any_landing() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("q.db"), true).await.unwrap();
    let window = Duration::from_secs(1);
    let slack = FakeSlack::start(10, 2, window, &[TOKEN]).await;
    // Far longer than the stagger between the first two starts.
    slack.set_response_delay(Duration::from_millis(800));
    let limits = Limits {
        per_user: 10,
        per_token: 2,
        in_flight: 10,
        window,
        ..Limits::DEFAULT
    };
    let worker = common::slack_worker(
        "t",
        TOKEN,
        &slack,
        &queue,
        limits,
        RetryPolicy::default(),
        Duration::from_secs(5),
    )
    .await;
    let (wake, shutdown) = (Arc::new(Notify::new()), CancellationToken::new());
    let task = tokio::spawn(worker.run(wake.clone(), shutdown.clone()));
    let enqueue = |user: &str, text: &str| {
        let now = Utc::now();
        let row = common::status_update("t", Some(user), text, ":x:", now);
        let (queue, wake) = (queue.clone(), wake.clone());
        async move {
            queue.enqueue(&row, now).await.unwrap();
            wake.notify_one();
        }
    };
    // Two starts 200 ms apart fill the window; two more rows wait for its slots, which free
    // 200 ms apart too.
    enqueue("U1", "x1").await;
    common::wait_for("the first start", Duration::from_secs(5), || {
        slack.received().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    enqueue("U2", "x2").await;
    enqueue("U3", "y1").await;
    enqueue("U4", "y2").await;
    common::wait_for("four requests", Duration::from_secs(10), || {
        slack.received().len() == 4
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    queue.close().await;

    let mut received = slack.received();
    received.sort_by_key(|r| r.at);
    let (third, fourth) = (&received[2], &received[3]);
    assert!(
        fourth.at < third.answered,
        "the fourth request waited for the third's answer ({:?} after its arrival)",
        fourth.at - third.at
    );
    assert_eq!(slack.limit_429s(), 0);
}
