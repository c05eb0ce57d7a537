//! The per-token worker against a fake Slack on 127.0.0.1 and a real SQLite file.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{wait_for, FakeSlack, Scripted};
use slack_statusd::config::{Limits, RetryPolicy};
use slack_statusd::queue::{Queue, State};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const LIMITS: Limits = Limits {
    per_user: 10,
    per_token: 30,
    window: Duration::from_secs(2),
    ..Limits::DEFAULT
};
const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    initial_backoff: Duration::from_millis(50),
    max_backoff: Duration::from_millis(200),
};

struct Rig {
    _dir: tempfile::TempDir,
    queue: Queue,
    slack: FakeSlack,
    shutdown: CancellationToken,
    wakes: Vec<Arc<Notify>>,
}

impl Rig {
    async fn new(tokens: &[&str]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(&dir.path().join("q.db"), true).await.unwrap();
        let slack = FakeSlack::start(10, 30, LIMITS.window, tokens).await;
        Rig {
            _dir: dir,
            queue,
            slack,
            shutdown: CancellationToken::new(),
            wakes: Vec::new(),
        }
    }

    /// Start a worker for token `name` whose value is `value`.
    async fn worker(&mut self, name: &str, value: &str) {
        self.worker_with(name, value, LIMITS).await;
    }

    /// [`Rig::worker`] with other limits.
    async fn worker_with(&mut self, name: &str, value: &str, limits: Limits) {
        let timeout = Duration::from_secs(5);
        let w = common::slack_worker(
            name,
            value,
            &self.slack,
            &self.queue,
            limits,
            RETRY,
            timeout,
        )
        .await;
        let wake = Arc::new(Notify::new());
        self.wakes.push(wake.clone());
        tokio::spawn(w.run(wake, self.shutdown.clone()));
    }

    async fn enqueue(&self, token: &str, user: Option<&str>, text: &str) -> i64 {
        let now = Utc::now();
        let u = common::status_update(token, user, text, ":x:", now);
        let id = self.queue.enqueue(&u, now).await.unwrap();
        self.wakes.iter().for_each(|w| w.notify_one());
        id
    }

    async fn states(&self) -> Vec<(i64, State, Option<String>)> {
        self.queue
            .list(&[])
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.state, r.last_error))
            .collect()
    }

    async fn wait_states(
        &self,
        what: &str,
        deadline: Duration,
        cond: impl Fn(&[(i64, State, Option<String>)]) -> bool,
    ) {
        common::wait_until(what, deadline, || async {
            let s = self.states().await;
            cond(&s).then_some(()).ok_or_else(|| format!("{s:?}"))
        })
        .await
    }
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_only_that_token() {
    let mut rig = Rig::new(&["xoxp-a", "xoxp-b"]).await;
    rig.slack.script(
        "xoxp-a",
        vec![Scripted::Reply(
            429,
            Some("1".into()),
            r#"{"ok":false,"error":"ratelimited"}"#.into(),
        )],
    );
    rig.worker("a", "xoxp-a").await;
    rig.worker("b", "xoxp-b").await;
    let a = rig.enqueue("a", None, "from a").await;
    // Let a hit its 429 before b's work arrives.
    wait_for("a's 429", Duration::from_secs(5), || {
        rig.slack.received().len() == 1
    })
    .await;
    let start = std::time::Instant::now();
    let b = rig.enqueue("b", None, "from b").await;
    rig.wait_states("b sent", Duration::from_secs(5), |s| {
        s.iter().any(|r| r.0 == b && r.1 == State::Sent)
    })
    .await;
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "b was not delayed by a's pause"
    );
    assert_eq!(
        rig.queue.get(a).await.unwrap().unwrap().state,
        State::Pending,
        "a waits out Retry-After"
    );
    rig.wait_states("a sent", Duration::from_secs(5), |s| {
        s.iter().any(|r| r.0 == a && r.1 == State::Sent)
    })
    .await;
    assert_eq!(
        rig.slack.early_after_429(),
        0,
        "no request before Retry-After ended"
    );
    let row = rig.queue.get(a).await.unwrap().unwrap();
    assert_eq!(row.attempts, 0, "a 429 does not count as an attempt");
    rig.shutdown.cancel();
}

#[tokio::test]
async fn a_permanent_error_fails_the_row_with_slacks_code() {
    let mut rig = Rig::new(&["xoxp-a"]).await;
    rig.slack.script(
        "xoxp-a",
        vec![Scripted::Reply(
            200,
            None,
            r#"{"ok":false,"error":"user_not_found"}"#.into(),
        )],
    );
    rig.worker("a", "xoxp-a").await;
    let bad = rig.enqueue("a", Some("UNOPE"), "x").await;
    rig.wait_states("row failed", Duration::from_secs(5), |s| {
        s.iter().any(|r| r.0 == bad && r.1 == State::Failed)
    })
    .await;
    assert_eq!(
        rig.queue
            .get(bad)
            .await
            .unwrap()
            .unwrap()
            .last_error
            .as_deref(),
        Some("user_not_found")
    );
    let good = rig.enqueue("a", Some("U2"), "y").await;
    rig.wait_states("next row sent", Duration::from_secs(5), |s| {
        s.iter().any(|r| r.0 == good && r.1 == State::Sent)
    })
    .await;
    rig.shutdown.cancel();
}

#[tokio::test]
async fn transient_errors_are_retried_then_succeed() {
    let mut rig = Rig::new(&["xoxp-a"]).await;
    rig.slack.script(
        "xoxp-a",
        vec![
            Scripted::Reply(503, None, "unavailable".into()),
            Scripted::Reply(200, None, r#"{"ok":false,"error":"internal_error"}"#.into()),
        ],
    );
    rig.worker("a", "xoxp-a").await;
    let id = rig.enqueue("a", None, "x").await;
    rig.wait_states("sent after retries", Duration::from_secs(5), |s| {
        s.iter().any(|r| r.0 == id && r.1 == State::Sent)
    })
    .await;
    let row = rig.queue.get(id).await.unwrap().unwrap();
    assert_eq!(row.attempts, 2);
    assert_eq!(rig.slack.received().len(), 3);
    rig.shutdown.cancel();
}

#[tokio::test]
async fn a_dead_token_fails_once_and_holds_the_rest() {
    let mut rig = Rig::new(&["xoxp-good"]).await;
    // One request at a time, so that the first answer comes before any other request starts.
    let one_at_a_time = Limits {
        in_flight: 1,
        ..LIMITS
    };
    rig.worker_with("dead", "xoxp-revoked", one_at_a_time).await;
    rig.worker("good", "xoxp-good").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(rig.enqueue("dead", Some(&format!("U{i}")), "x").await);
    }
    let good = rig.enqueue("good", None, "y").await;
    rig.wait_states("dead token settled", Duration::from_secs(5), |s| {
        s.iter()
            .filter(|r| ids.contains(&r.0))
            .all(|r| r.1 == State::Failed || r.1 == State::Held)
            && s.iter().any(|r| r.0 == good && r.1 == State::Sent)
    })
    .await;
    let dead_requests = rig
        .slack
        .received()
        .iter()
        .filter(|r| r.token == "xoxp-revoked")
        .count();
    assert_eq!(dead_requests, 1, "one request, not one per row");
    let states = rig.states().await;
    assert_eq!(states.iter().filter(|r| r.1 == State::Held).count(), 4);
    assert!(states
        .iter()
        .any(|r| r.1 == State::Failed && r.2.as_deref() == Some("invalid_auth")));
    rig.shutdown.cancel();
}

#[tokio::test]
async fn a_dead_token_finishes_its_flights_with_their_own_answers_and_starts_no_more() {
    let mut rig = Rig::new(&[]).await;
    // Answers come 150 ms late, so the first five requests are all in the air together.
    rig.slack.set_response_delay(Duration::from_millis(150));
    rig.slack.script(
        "xoxp-revoked",
        (0..5)
            .map(|_| {
                let body = r#"{"ok":false,"error":"invalid_auth"}"#.to_string();
                Scripted::Delay(
                    Duration::from_millis(150),
                    Box::new(Scripted::Reply(200, None, body)),
                )
            })
            .collect(),
    );
    let now = Utc::now();
    let mut first = Vec::new();
    for i in 0..5 {
        let u = common::status_update("dead", Some(&format!("U{i}")), "x", ":x:", now);
        first.push(rig.queue.enqueue(&u, now).await.unwrap());
    }
    rig.worker("dead", "xoxp-revoked").await;
    rig.wait_states("the five in flight answered", Duration::from_secs(5), |s| {
        s.iter()
            .filter(|r| first.contains(&r.0))
            .all(|r| r.1 == State::Failed)
    })
    .await;
    let later: Vec<i64> = later_rows(&rig).await;
    rig.wait_states("later rows held", Duration::from_secs(5), |s| {
        s.iter()
            .filter(|r| later.contains(&r.0))
            .all(|r| r.1 == State::Held)
    })
    .await;
    let received = rig.slack.received();
    assert_eq!(
        received.len(),
        5,
        "no request after the token died: {received:?}"
    );
    let last_arrival = received.iter().map(|r| r.at).max().unwrap();
    let first_arrival = received.iter().map(|r| r.at).min().unwrap();
    assert!(
        last_arrival - first_arrival < Duration::from_millis(150),
        "the five went out together, before any answer came back"
    );
    let states = rig.states().await;
    for id in &first {
        let row = states.iter().find(|r| r.0 == *id).unwrap();
        assert_eq!(row.2.as_deref(), Some("invalid_auth"), "row {id}");
    }
    rig.shutdown.cancel();
}

/// Three more rows for the dead token, enqueued after it died.
async fn later_rows(rig: &Rig) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 5..8 {
        ids.push(rig.enqueue("dead", Some(&format!("U{i}")), "x").await);
    }
    ids
}

#[tokio::test]
async fn requests_have_the_documented_shape() {
    let mut rig = Rig::new(&["xoxp-a"]).await;
    rig.worker("a", "xoxp-a").await;
    let id = rig.enqueue("a", Some("U42"), "Coffee").await;
    rig.wait_states("sent", Duration::from_secs(5), |s| {
        s.iter().any(|r| r.0 == id && r.1 == State::Sent)
    })
    .await;
    let req = &rig.slack.received()[0];
    assert_eq!(req.content_type, "application/json; charset=utf-8");
    assert_eq!(req.user.as_deref(), Some("U42"));
    assert_eq!(req.profile["status_text"], "Coffee");
    assert_eq!(req.profile["status_expiration"], 0);
    rig.shutdown.cancel();
}
