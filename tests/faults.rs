//! Faults at the fake Slack, one table row each, through the real per-token `Worker`, a real
//! SQLite file and HTTP on 127.0.0.1: every fault is retried or failed exactly as SPEC §4
//! says, no request goes out before a `Retry-After` ends, and the row is never lost. (The
//! forms of `Retry-After` and hostile answers against the real binary: `hostile_slack.rs`.)

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{wait_until, FakeSlack, Scripted};
use slack_statusd::config::{Limits, RetryPolicy};
use slack_statusd::queue::{Queue, State, Update};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "xoxp-faults";

const LIMITS: Limits = Limits {
    per_user: 10,
    per_token: 30,
    window: Duration::from_secs(2),
    ..Limits::DEFAULT
};

/// Short backoffs: each retry waits 10–40 ms.
const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    initial_backoff: Duration::from_millis(20),
    max_backoff: Duration::from_millis(40),
};

/// The client's timeout in these tests; `Delay` answers take longer than this.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(300);

/// One worker for token "t" (value [`TOKEN`]) on a fresh database and a fresh fake Slack.
struct Rig {
    _dir: tempfile::TempDir,
    queue: Queue,
    slack: FakeSlack,
    shutdown: CancellationToken,
    wake: Arc<Notify>,
}

impl Rig {
    async fn new(retry: RetryPolicy, script: Vec<Scripted>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(&dir.path().join("q.db"), true).await.unwrap();
        let slack = FakeSlack::start(10, 30, LIMITS.window, &[TOKEN]).await;
        slack.script(TOKEN, script);
        let worker =
            common::slack_worker("t", TOKEN, &slack, &queue, LIMITS, retry, CLIENT_TIMEOUT).await;
        let wake = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        tokio::spawn(worker.run(wake.clone(), shutdown.clone()));
        Rig {
            _dir: dir,
            queue,
            slack,
            shutdown,
            wake,
        }
    }

    async fn enqueue(&self, user: &str, text: &str) -> i64 {
        let now = Utc::now();
        let update = common::status_update("t", Some(user), text, ":zap:", now);
        let id = self.queue.enqueue(&update, now).await.unwrap();
        self.wake.notify_one();
        id
    }

    /// Wait until row `id` reaches a final state; returns it.
    async fn settled(&self, id: i64, deadline: Duration) -> Update {
        wait_until(&format!("row {id} to settle"), deadline, || async {
            let row = self.queue.get(id).await.unwrap().expect("row exists");
            if !matches!(row.state, State::Pending | State::InFlight) {
                return Ok(row);
            }
            Err(format!(
                "{row:?}; requests {:?}",
                self.slack
                    .received()
                    .iter()
                    .map(|r| r.status)
                    .collect::<Vec<_>>()
            ))
        })
        .await
    }
}

fn reply(status: u16, retry_after: Option<&str>, body: &str) -> Scripted {
    Scripted::Reply(status, retry_after.map(str::to_string), body.to_string())
}

fn slack_error(code: &str) -> Scripted {
    reply(200, None, &format!(r#"{{"ok":false,"error":"{code}"}}"#))
}

/// What a fault must lead to, once the fake answers normally again.
struct Case {
    /// What the fake does to the first request.
    fault: Scripted,
    /// What it is, for failure messages.
    name: &'static str,
    /// Attempts the row spent (0 for rate limits, 1 for a transient failure).
    attempts: u32,
    /// `last_error` recorded for the transient failure (None after a rate limit).
    last_error: Option<&'static str>,
    /// At least this long between the first and second request (a `Retry-After`).
    min_gap: Duration,
}

fn cases() -> Vec<Case> {
    let transient = |name, fault, error| Case {
        fault,
        name,
        attempts: 1,
        last_error: Some(error),
        min_gap: Duration::from_millis(10),
    };
    vec![
        transient("HTTP 500", reply(500, None, "boom"), "HTTP 500"),
        transient(
            "HTTP 503",
            reply(503, None, "<html>unavailable</html>"),
            "HTTP 503",
        ),
        transient(
            "HTTP 503 with a Slack code",
            reply(503, None, r#"{"ok":false,"error":"service_unavailable"}"#),
            "HTTP 503: service_unavailable",
        ),
        transient(
            "200 internal_error",
            slack_error("internal_error"),
            "internal_error",
        ),
        transient("200 fatal_error", slack_error("fatal_error"), "fatal_error"),
        transient(
            "200 service_unavailable",
            slack_error("service_unavailable"),
            "service_unavailable",
        ),
        transient(
            "200 request_timeout",
            slack_error("request_timeout"),
            "request_timeout",
        ),
        transient(
            "200 profile_set_failed",
            slack_error("profile_set_failed"),
            "profile_set_failed",
        ),
        transient(
            "a body that is not JSON",
            reply(200, None, "<html>gateway</html>"),
            "HTTP 200: response is not JSON",
        ),
        transient(
            "a connection closed with no response",
            Scripted::CloseConnection,
            "request failed (connection closed?)",
        ),
        transient(
            "a response slower than the client timeout",
            Scripted::Delay(
                CLIENT_TIMEOUT * 3,
                Box::new(reply(200, None, r#"{"ok":true}"#)),
            ),
            "timeout",
        ),
        transient(
            "a redirect to another server",
            Scripted::raw(307, &[("location", "http://127.0.0.1:1/api/x?k=v")], ""),
            "HTTP 307: redirect to 127.0.0.1:1 not followed; API calls follow no redirect \
             (check api_url)",
        ),
        transient(
            "a body over 1 MiB",
            Scripted::Stream {
                status: 200,
                len: 3 << 20,
            },
            "HTTP 200: response body over 1048576 bytes, not read",
        ),
        Case {
            fault: reply(429, Some("-1"), r#"{"ok":false,"error":"ratelimited"}"#),
            name: "429 with a negative Retry-After",
            attempts: 0,
            last_error: None,
            // Unusable: backs off as for a transient failure.
            min_gap: RETRY.initial_backoff / 2,
        },
        Case {
            fault: reply(429, None, r#"{"ok":false,"error":"ratelimited"}"#),
            name: "429 without Retry-After",
            attempts: 0,
            last_error: None,
            // Backs off as for a transient failure: at least half the initial backoff.
            min_gap: RETRY.initial_backoff / 2,
        },
        Case {
            fault: reply(429, Some("1"), ""),
            name: "429 with Retry-After and an empty body",
            attempts: 0,
            last_error: None,
            min_gap: Duration::from_secs(1),
        },
        Case {
            fault: reply(200, Some("1"), r#"{"ok":false,"error":"ratelimited"}"#),
            name: "200 ok:false ratelimited with Retry-After",
            attempts: 0,
            last_error: None,
            min_gap: Duration::from_secs(1),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_is_retried_as_spec_says_and_nothing_is_lost() {
    // The cases run concurrently, each with its own database, fake Slack and worker.
    let runs = cases().into_iter().map(|case| {
        tokio::spawn(async move {
            let rig = Rig::new(RETRY, vec![case.fault.clone()]).await;
            let id = rig.enqueue("U1", case.name).await;
            let row = rig.settled(id, Duration::from_secs(10)).await;
            let received = rig.slack.received();
            rig.shutdown.cancel();
            (case, row, received, rig.slack.early_after_429())
        })
    });
    let mut failures = Vec::new();
    for run in runs {
        let (case, row, received, early) = run.await.unwrap();
        let name = case.name;
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(format!("{name}: {what}"));
            }
        };
        check(
            row.state == State::Sent,
            format!("ends sent, not {}", row.state),
        );
        check(
            row.attempts == case.attempts,
            format!("attempts {} (want {})", row.attempts, case.attempts),
        );
        check(
            row.last_error.as_deref() == case.last_error,
            format!(
                "last_error {:?} (want {:?})",
                row.last_error, case.last_error
            ),
        );
        check(
            received.len() == 2,
            format!(
                "{} requests (want the fault, then one retry)",
                received.len()
            ),
        );
        if received.len() >= 2 {
            let gap = received[1].at - received[0].at;
            check(
                gap >= case.min_gap,
                format!("retried after {gap:?}, before {:?}", case.min_gap),
            );
            check(
                received[1].profile["status_text"] == name,
                "the retry carries the row's status".into(),
            );
        }
        check(
            early == 0,
            format!("{early} requests before Retry-After ended"),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn max_attempts_reached_fails_the_row_with_the_last_error() {
    let script = vec![
        reply(500, None, "boom"),
        slack_error("internal_error"),
        Scripted::CloseConnection,
        reply(503, None, "unavailable"),
    ];
    let rig = Rig::new(RETRY, script).await;
    let id = rig.enqueue("U1", "doomed").await;
    let row = rig.settled(id, Duration::from_secs(10)).await;
    assert_eq!(row.state, State::Failed);
    assert_eq!(row.attempts, RETRY.max_attempts);
    assert_eq!(
        row.last_error.as_deref(),
        Some("HTTP 503"),
        "the last error"
    );
    assert_eq!(rig.slack.received().len(), 4, "one request per attempt");
    // The token is not dead: the next row goes out.
    let next = rig.enqueue("U2", "fine").await;
    assert_eq!(
        rig.settled(next, Duration::from_secs(5)).await.state,
        State::Sent
    );
    assert_eq!(
        rig.slack.received().len(),
        5,
        "no request for the failed row"
    );
    rig.shutdown.cancel();
}

#[tokio::test]
async fn rate_limits_spend_no_attempt_however_many() {
    // Five 429s in a row would exhaust max_attempts (4) if they counted.
    let mut script: Vec<Scripted> = (0..5)
        .map(|_| reply(429, None, r#"{"ok":false,"error":"ratelimited"}"#))
        .collect();
    script.push(slack_error("internal_error"));
    let rig = Rig::new(RETRY, script).await;
    let id = rig.enqueue("U1", "patient").await;
    let row = rig.settled(id, Duration::from_secs(10)).await;
    assert_eq!(row.state, State::Sent);
    assert_eq!(row.attempts, 1, "only internal_error counted");
    assert_eq!(row.last_error.as_deref(), Some("internal_error"));
    assert_eq!(rig.slack.received().len(), 7);
    rig.shutdown.cancel();
}

#[tokio::test]
async fn a_target_in_backoff_does_not_delay_the_tokens_other_targets() {
    // The first target's request fails and backs off for 1–2 s; meanwhile another target's
    // row goes out at once.
    let slow = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(2),
    };
    let rig = Rig::new(slow, vec![reply(500, None, "boom")]).await;
    let first = rig.enqueue("U1", "backing off").await;
    common::wait_for("the failed request", Duration::from_secs(5), || {
        !rig.slack.received().is_empty()
    })
    .await;
    let start = Instant::now();
    let other = rig.enqueue("U2", "not delayed").await;
    assert_eq!(
        rig.settled(other, Duration::from_secs(5)).await.state,
        State::Sent
    );
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "U2 waited {:?} behind U1's backoff",
        start.elapsed()
    );
    let row = rig.queue.get(first).await.unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (State::Pending, 1));
    assert_eq!(
        rig.settled(first, Duration::from_secs(5)).await.state,
        State::Sent
    );
    rig.shutdown.cancel();
}

#[tokio::test]
async fn a_row_enqueued_after_its_token_died_is_held() {
    let rig = Rig::new(RETRY, vec![slack_error("invalid_auth")]).await;
    let first = rig.enqueue("U1", "refused").await;
    let row = rig.settled(first, Duration::from_secs(5)).await;
    assert_eq!(
        (row.state, row.last_error.as_deref()),
        (State::Failed, Some("invalid_auth"))
    );
    // `slack-statusd set`, or the scheduler, adds a row for the dead token.
    let later = rig.enqueue("U2", "arrives later").await;
    let row = rig.settled(later, Duration::from_secs(3)).await;
    assert_eq!(row.state, State::Held, "held like the token's other rows");
    assert_eq!(rig.slack.received().len(), 1, "no request for a dead token");
    rig.shutdown.cancel();
}
