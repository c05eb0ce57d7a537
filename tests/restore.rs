//! Temporary statuses that put back what was there (SPEC §6 "Restore"), through the worker,
//! a real SQLite file and the fake Slack, on a test clock that jumps to the end of the
//! temporary status instead of waiting for it.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::FakeSlack;
use serde_json::{json, Value};
use slack_statusd::queue::{NewUpdate, State, Target, Update};

const USER: &str = "U1";

use common::ClockRig as Rig;

async fn rig() -> Rig {
    Rig::new().await
}

fn shows(text: &str, emoji: &str, expiration: i64) -> Value {
    json!({"status_text": text, "status_emoji": emoji, "status_expiration": expiration})
}

impl Rig {
    /// Enqueue a status firing at `at_min`, temporary until `until_min` when given.
    async fn fire(&self, text: &str, at_min: i64, until_min: Option<i64>) -> i64 {
        let mut u = NewUpdate {
            rule: Some(text.to_lowercase()),
            restore: until_min.is_some(),
            ..common::status_update("a", Some(USER), text, ":x:", self.at(at_min))
        };
        if let Some(until) = until_min {
            u.patch.status.as_mut().unwrap().expiration = self.at(until).timestamp();
        }
        self.queue.enqueue(&u, self.clock.now()).await.unwrap()
    }

    fn shown_text(&self) -> String {
        let p = self.slack.profile("xoxp-a", USER).unwrap_or(json!({}));
        p["status_text"].as_str().unwrap_or("").to_string()
    }

    fn hand(&self, profile: Value) {
        self.slack.set_by_hand("xoxp-a", USER, profile);
    }

    /// The restore rows, newest first.
    async fn restores(&self) -> Vec<Update> {
        let all = self.queue.list(&[]).await.unwrap();
        all.into_iter().filter(Update::is_restore).collect()
    }

    async fn state(&self, id: i64) -> (State, Option<String>) {
        let r = self.queue.get(id).await.unwrap().unwrap();
        (r.state, r.last_error)
    }
}

#[tokio::test]
async fn a_lunch_break_puts_back_the_status_from_before() {
    let mut rig = rig().await;
    rig.hand(shows("Writing", ":pencil:", 0));
    let lunch = rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Lunch");
    assert_eq!(rig.state(lunch).await.0, State::Sent);
    let restores = rig.restores().await;
    assert_eq!(restores.len(), 1, "one restore waits");
    let r = &restores[0];
    assert_eq!(r.state, State::Pending);
    assert_eq!(
        r.fire_at.timestamp(),
        rig.at(60).timestamp(),
        "due at the end"
    );
    assert_eq!(r.saved.as_ref().unwrap().saved.text, "Writing");
    assert_eq!(r.rule.as_deref(), Some("lunch"));

    // Before its end nothing goes.
    rig.go_to(59);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Lunch");

    rig.go_to(60);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Writing");
    let p = rig.slack.profile("xoxp-a", USER).unwrap();
    assert_eq!(p["status_emoji"], ":pencil:");
    assert_eq!(p["status_expiration"], 0, "the saved expiry goes back too");
    assert_eq!(rig.state(r.id).await.0, State::Sent);
    assert_eq!(
        rig.slack.gets(),
        2,
        "one read before the temporary status, one at the restore"
    );
}

#[tokio::test]
async fn a_restore_after_slack_cleared_the_temporary_status_still_applies() {
    let mut rig = rig().await;
    rig.hand(shows("Writing", ":pencil:", 0));
    rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    // Slack clears a status at its expiry.
    rig.hand(shows("", "", 0));
    rig.go_to(60);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Writing");
}

#[tokio::test]
async fn a_status_the_user_changed_meanwhile_is_theirs() {
    let mut rig = rig().await;
    rig.hand(shows("Writing", ":pencil:", 0));
    rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    rig.hand(shows("Gym", ":muscle:", 0));
    rig.go_to(60);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Gym");
    let r = &rig.restores().await[0];
    assert_eq!(
        rig.state(r.id).await,
        (State::Skipped, Some("changed_by_user".into()))
    );
}

#[tokio::test]
async fn a_later_firing_that_is_not_temporary_overtakes_the_restore() {
    let mut rig = rig().await;
    rig.hand(shows("Writing", ":pencil:", 0));
    rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    rig.fire("Coffee", 10, None).await;
    rig.go_to(10);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Coffee");
    rig.go_to(60);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Coffee");
    let r = &rig.restores().await[0];
    assert_eq!(
        rig.state(r.id).await,
        (State::Skipped, Some("overtaken".into()))
    );
}

#[tokio::test]
async fn at_an_equal_instant_the_firing_goes_before_the_restore() {
    let mut rig = rig().await;
    rig.hand(shows("Writing", ":pencil:", 0));
    rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    // Enqueued after the restore row, at the restore's own instant.
    let coffee = rig.fire("Coffee", 60, None).await;
    rig.go_to(60);
    rig.drain().await;
    assert_eq!(rig.state(coffee).await.0, State::Sent);
    assert_eq!(
        rig.shown_text(),
        "Coffee",
        "the restore came second and was overtaken"
    );
    let r = &rig.restores().await[0];
    assert_eq!(rig.state(r.id).await.1.as_deref(), Some("overtaken"));
}

#[tokio::test]
async fn overlapping_temporaries_share_one_restore_of_the_status_from_before_the_first() {
    let mut rig = rig().await;
    rig.hand(shows("Writing", ":pencil:", 0));
    rig.fire("Meeting", 0, Some(60)).await;
    rig.drain().await;
    rig.fire("Lunch", 30, Some(90)).await;
    rig.go_to(30);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Lunch");
    let restores = rig.restores().await;
    assert_eq!(restores.len(), 1, "{restores:?}");
    assert_eq!(restores[0].fire_at.timestamp(), rig.at(90).timestamp());
    assert_eq!(restores[0].saved.as_ref().unwrap().saved.text, "Writing");
    // At the first one's end nothing is restored.
    rig.go_to(60);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Lunch");
    rig.go_to(90);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Writing");
}

#[tokio::test]
async fn nothing_is_restored_over_an_empty_status_and_an_expired_one_is_not_put_back() {
    let mut rig = rig().await;
    // Empty before: nothing to put back, no restore row.
    rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    assert!(rig.restores().await.is_empty());

    // A status that expires before the temporary one ends is not put back.
    let mut rig = rig_with_expiring().await;
    rig.go_to(60);
    rig.drain().await;
    let r = &rig.restores().await[0];
    assert_eq!(
        rig.state(r.id).await,
        (State::Skipped, Some("expired".into()))
    );
    assert_eq!(rig.shown_text(), "Lunch");
}

/// A rig whose user shows a status expiring 30 minutes in, replaced by a lunch until 60.
async fn rig_with_expiring() -> Rig {
    let mut rig = rig().await;
    rig.hand(shows("Trip", ":airplane:", rig.at(30).timestamp()));
    rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    assert_eq!(rig.restores().await.len(), 1);
    rig
}

#[tokio::test]
async fn a_restored_status_counts_as_the_users_own_for_respect_manual() {
    let mut rig = rig().await;
    rig.hand(shows("Writing", ":pencil:", 0));
    rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    rig.go_to(60);
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Writing");
    let polite = NewUpdate {
        respect_manual: true,
        ..common::status_update("a", Some(USER), "Coffee", ":coffee:", rig.at(61))
    };
    let id = rig.queue.enqueue(&polite, rig.clock.now()).await.unwrap();
    rig.go_to(61);
    rig.drain().await;
    assert_eq!(rig.state(id).await.0, State::Skipped);
    assert_eq!(rig.shown_text(), "Writing");
}

#[tokio::test]
async fn ending_a_temporary_status_now_restores_at_once() {
    let mut rig = rig().await;
    rig.hand(shows("Writing", ":pencil:", 0));
    rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    rig.go_to(5);
    let target = Target {
        token: "a".into(),
        user: Some(USER.into()),
    };
    let id = rig
        .queue
        .end_temporary_now(&target, rig.clock.now())
        .await
        .unwrap()
        .expect("a restore waits");
    rig.drain().await;
    assert_eq!(rig.shown_text(), "Writing");
    assert_eq!(rig.state(id).await.0, State::Sent);
    // With none waiting there is nothing to make due.
    assert_eq!(
        rig.queue
            .end_temporary_now(&target, rig.clock.now())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn reads_are_logged_so_that_a_restart_rebuilds_the_read_window() {
    let mut rig = rig().await;
    rig.hand(shows("Writing", ":pencil:", 0));
    rig.fire("Lunch", 0, Some(60)).await;
    rig.drain().await;
    let sends = rig
        .queue
        .sends_since("a", rig.start - TimeDelta::minutes(1))
        .await
        .unwrap();
    let methods: Vec<&str> = sends.iter().map(|(m, _, _)| m.as_str()).collect();
    assert_eq!(methods, vec!["users.profile.get", "users.profile.set"]);
}

/// The real binary: `set --restore` puts the user's status back within 3 s of the expiry,
/// and `set --end` ends a temporary status at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_restores_after_set_restore_and_ends_early_with_set_end() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-me"]).await;
    let setup = common::Setup::new(&slack, "[tokens.me]\ntoken_env = \"R_ME\"\n");
    slack.set_by_hand("xoxp-me", "", shows("Writing", ":pencil:", 0));
    let mut child = setup.spawn("daemon.log", &[("R_ME", "xoxp-me")]);
    setup.wait_started("daemon.log").await;
    let text = |slack: &FakeSlack| {
        slack.profile("xoxp-me", "").unwrap_or(json!({}))["status_text"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    setup.set_temporary("Lunch", "2s");
    common::wait_for("the temporary status", Duration::from_secs(5), || {
        text(&slack) == "Lunch"
    })
    .await;
    let sent_at = std::time::Instant::now();
    common::wait_for("the restore", Duration::from_secs(8), || {
        text(&slack) == "Writing"
    })
    .await;
    assert!(
        sent_at.elapsed() < Duration::from_secs(2 + 3 + 1),
        "the restore goes out within 3 s of the end"
    );

    setup.set_temporary("Focus", "1h");
    common::wait_for(
        "the second temporary status",
        Duration::from_secs(5),
        || text(&slack) == "Focus",
    )
    .await;
    setup.set(&["--token", "me", "--end"]);
    common::wait_for("the early end", Duration::from_secs(5), || {
        text(&slack) == "Writing"
    })
    .await;
    common::stop(&mut child).await;
    let restores = setup.restore_rows().await;
    assert_eq!(restores.len(), 2, "{restores:#?}");
    assert!(
        restores.iter().all(|r| r.state == State::Sent),
        "{restores:#?}"
    );

    // --restore needs --expire: refused before the database is touched.
    let out = setup.cli(&["set", "--token", "me", "--text", "x", "--restore"]);
    assert_eq!(out.status.code(), Some(1), "invalid input");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--expire"));
}
