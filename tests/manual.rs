//! `respect_manual`: a status the user set by hand is left alone (SPEC §4 "Manual statuses"),
//! through the worker, a real SQLite file and the fake Slack's users.profile.get.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::FakeSlack;
use serde_json::json;
use slack_statusd::config::{Limits, RetryPolicy};
use slack_statusd::daemon::Worker;
use slack_statusd::queue::{NewUpdate, Queue, State, SKIPPED_MANUAL};
use tokio_util::sync::CancellationToken;

struct Rig {
    _dir: tempfile::TempDir,
    queue: Queue,
    slack: FakeSlack,
    worker: Worker,
}

async fn rig() -> Rig {
    rig_with_token("xoxp-a").await
}

/// A worker for token "a" whose value is `value` (the fake accepts only "xoxp-a").
async fn rig_with_token(value: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(&dir.path().join("q.db"), true).await.unwrap();
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-a"]).await;
    let (limits, retry) = (Limits::default(), RetryPolicy::default());
    let timeout = Duration::from_secs(5);
    let worker = common::slack_worker("a", value, &slack, &queue, limits, retry, timeout).await;
    Rig {
        _dir: dir,
        queue,
        slack,
        worker,
    }
}

impl Rig {
    async fn enqueue(&self, text: &str, respect_manual: bool, title: Option<&str>) -> i64 {
        let mut u = NewUpdate {
            rule: Some("r".into()),
            respect_manual,
            restore: false,
            ..common::status_update("a", Some("U1"), text, ":x:", Utc::now())
        };
        if let Some(t) = title {
            u.patch.fields.insert("title".into(), json!(t));
        }
        self.queue.enqueue(&u, Utc::now()).await.unwrap()
    }

    /// Step the worker until it is idle (the zero-to-production drain loop).
    async fn drain(&mut self) {
        let shutdown = CancellationToken::new();
        while self.worker.step(&shutdown).await.unwrap() == slack_statusd::daemon::Step::Worked {}
    }

    async fn row(&self, id: i64) -> (State, Option<String>) {
        let r = self.queue.get(id).await.unwrap().unwrap();
        (r.state, r.last_error)
    }

    fn sets(&self) -> usize {
        self.slack.received().len()
    }
}

#[tokio::test]
async fn a_status_set_by_hand_is_left_alone() {
    let mut rig = rig().await;
    rig.slack.set_by_hand(
        "xoxp-a",
        "U1",
        json!({"status_text": "Lunch", "status_emoji": ":taco:", "status_expiration": 0}),
    );
    let id = rig.enqueue("Coffee", true, None).await;
    rig.drain().await;
    assert_eq!(
        rig.row(id).await,
        (State::Skipped, Some(SKIPPED_MANUAL.into()))
    );
    assert_eq!(rig.sets(), 0, "nothing was set");
    assert_eq!(rig.slack.gets(), 1);
    assert_eq!(
        rig.slack.profile("xoxp-a", "U1").unwrap()["status_text"],
        "Lunch"
    );
}

#[tokio::test]
async fn other_fields_still_go_out_when_the_status_is_skipped() {
    let mut rig = rig().await;
    rig.slack.set_by_hand(
        "xoxp-a",
        "U1",
        json!({"status_text": "Lunch", "status_emoji": ":taco:"}),
    );
    let id = rig.enqueue("Coffee", true, Some("Barista")).await;
    rig.drain().await;
    assert_eq!(rig.row(id).await.0, State::Sent);
    let sent = &rig.slack.received()[0].profile;
    assert_eq!(sent["title"], "Barista");
    assert!(
        sent.get("status_text").is_none(),
        "the status was left out: {sent}"
    );
}

#[tokio::test]
async fn our_own_last_status_an_expired_one_or_none_is_overwritten() {
    let mut rig = rig().await;
    // Nothing set: ours goes out.
    let first = rig.enqueue("Coffee", true, None).await;
    rig.drain().await;
    assert_eq!(rig.row(first).await.0, State::Sent);
    // Now the current status is the one we set: a new one replaces it.
    let second = rig.enqueue("Focus", true, None).await;
    rig.drain().await;
    assert_eq!(rig.row(second).await.0, State::Sent);
    // A hand-set status that has expired does not count.
    rig.slack.set_by_hand(
        "xoxp-a",
        "U1",
        json!({"status_text": "Lunch", "status_emoji": ":taco:", "status_expiration": 1000}),
    );
    let third = rig.enqueue("Back", true, None).await;
    rig.drain().await;
    assert_eq!(rig.row(third).await.0, State::Sent);
    assert_eq!(rig.sets(), 3);
}

#[tokio::test]
async fn without_the_option_rules_always_win_and_nothing_is_read() {
    let mut rig = rig().await;
    rig.slack.set_by_hand(
        "xoxp-a",
        "U1",
        json!({"status_text": "Lunch", "status_emoji": ":taco:"}),
    );
    let id = rig.enqueue("Coffee", false, None).await;
    rig.drain().await;
    assert_eq!(rig.row(id).await.0, State::Sent);
    assert_eq!(rig.slack.gets(), 0);
}

#[tokio::test]
async fn a_failed_read_is_treated_like_a_failed_set() {
    let mut rig = rig_with_token("xoxp-dead").await;
    let id = rig.enqueue("Coffee", true, None).await;
    rig.drain().await;
    assert_eq!(
        rig.row(id).await,
        (State::Failed, Some("invalid_auth".into()))
    );
    assert_eq!(rig.sets(), 0);
}
