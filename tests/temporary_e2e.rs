//! Temporary statuses end to end (SPEC §6): the real binary, `slack-statusd set` and the fake
//! Slack with the three methods and their exact windows. Expiries are a few seconds; waits
//! are for conditions, with deadlines.

mod common;

use std::process::Child;
use std::time::Duration;

use common::{wait_for, FakeSlack, Setup};
use serde_json::{json, Value};
use slack_statusd::profile::Part;
use slack_statusd::queue::{State, Update};

const TOKEN: &str = "xoxp-me";

/// A daemon for token `me` over `slack`, with `extra` config; the user shows `before`.
async fn daemon(slack: &FakeSlack, extra: &str, before: Value) -> (Setup, Child) {
    slack.set_by_hand(TOKEN, "", before);
    let setup = Setup::new(
        slack,
        &format!("{extra}[tokens.me]\ntoken_env = \"T_ME\"\n"),
    );
    let child = setup.spawn("daemon.log", &[("T_ME", TOKEN)]);
    setup.wait_started("daemon.log").await;
    (setup, child)
}

fn shows(text: &str, emoji: &str, expiration: i64) -> Value {
    json!({"status_text": text, "status_emoji": emoji, "status_expiration": expiration})
}

fn shown(slack: &FakeSlack) -> Value {
    slack.profile(TOKEN, "").unwrap_or(json!({}))
}

fn text(slack: &FakeSlack) -> String {
    shown(slack)["status_text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn restores(setup: &Setup) -> Vec<Update> {
    setup.restore_rows().await
}

async fn wait_text(slack: &FakeSlack, want: &str, secs: u64) {
    wait_for(
        &format!("status {want:?}"),
        Duration::from_secs(secs),
        || text(slack) == want,
    )
    .await;
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_on_time_with_its_own_expiry_and_nested_temporaries_share_one_restore() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let trip_ends = now() + 3600;
    let (setup, mut child) = daemon(&slack, "", shows("Trip", ":airplane:", trip_ends)).await;
    setup.set_temporary("Call", "2s");
    wait_text(&slack, "Call", 5).await;
    // Nested: a second temporary status while the first shows.
    setup.set_temporary("Lunch", "4s");
    wait_text(&slack, "Lunch", 5).await;
    let lunch_sent = std::time::Instant::now();
    wait_text(&slack, "Trip", 10).await;
    assert!(
        lunch_sent.elapsed() >= Duration::from_secs(2),
        "not restored at the first one's end"
    );
    assert_eq!(
        shown(&slack)["status_expiration"],
        trip_ends,
        "its own expiry back"
    );
    common::stop(&mut child).await;
    let r = restores(&setup).await;
    assert_eq!(r.len(), 1, "one restore for both: {r:#?}");
    assert_eq!(r[0].state, State::Sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_change_is_kept_and_an_expired_saved_status_is_not_put_back() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let (setup, mut child) = daemon(&slack, "", shows("Writing", ":pencil:", 0)).await;
    setup.set_temporary("Call", "2s");
    wait_text(&slack, "Call", 5).await;
    slack.set_by_hand(TOKEN, "", shows("Gym", ":muscle:", 0));
    wait_for("the restore decided", Duration::from_secs(10), || {
        common::log_has(&setup.path("daemon.log"), "restore skipped")
    })
    .await;
    assert_eq!(text(&slack), "Gym");

    // The saved status expires before the temporary one ends.
    slack.set_by_hand(TOKEN, "", shows("Errand", ":runner:", now() + 2));
    setup.set_temporary("Focus", "4s");
    wait_text(&slack, "Focus", 5).await;
    wait_for(
        "the second restore decided",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(setup.path("daemon.log"))
                .unwrap()
                .matches("restore skipped")
                .count()
                == 2
        },
    )
    .await;
    common::stop(&mut child).await;
    let mut r = restores(&setup).await;
    r.sort_by_key(|r| r.id);
    let why: Vec<_> = r.iter().map(|r| (r.state, r.last_error.clone())).collect();
    assert_eq!(
        why,
        [
            (State::Skipped, Some("changed_by_user".into())),
            (State::Skipped, Some("expired".into())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnd_minutes_presence_away_then_auto_and_snooze_not_active_is_done() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let (setup, mut child) = daemon(&slack, "", shows("", "", 0)).await;
    setup.set(&[
        "--token", "me", "--text", "Focus", "--expire", "90s", "--dnd",
    ]);
    wait_for("the snooze", Duration::from_secs(5), || {
        slack.snooze(TOKEN).is_some()
    })
    .await;
    assert_eq!(slack.snooze(TOKEN), Some(2), "⌈90 s / 60 s⌉");
    let id = setup.set(&["--token", "me", "--dnd=false"]);
    wait_for("the snooze ended", Duration::from_secs(5), || {
        slack.snooze(TOKEN).is_none()
    })
    .await;
    // Ended again: Slack says snooze_not_active, which is what was wanted.
    let again = setup.set(&["--token", "me", "--dnd=false"]);
    setup.set(&[
        "--token",
        "me",
        "--text",
        "Out",
        "--expire",
        "2s",
        "--presence",
        "away",
        "--restore",
    ]);
    wait_for("away", Duration::from_secs(5), || {
        slack.presence(TOKEN).as_deref() == Some("away")
    })
    .await;
    wait_for("auto at the end", Duration::from_secs(8), || {
        slack.presence(TOKEN).as_deref() == Some("auto")
    })
    .await;
    common::stop(&mut child).await;
    let rows = common::rows(&setup.db()).await;
    let state = |id: i64| rows.iter().find(|r| r.id == id).unwrap().state;
    assert_eq!((state(id), state(again)), (State::Sent, State::Sent));
    assert_eq!(slack.received_for("dnd.endSnooze").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dnd_scope_is_isolated_and_a_burst_of_all_three_methods_sees_no_429() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &[TOKEN]).await;
    slack.set_per_method(3);
    slack.set_per_read(3);
    let limits = "[limits]\nper_method = 3\nper_read = 3\nwindow = \"2s\"\n";
    let (setup, mut child) = daemon(&slack, limits, shows("", "", 0)).await;
    slack.without_scope(TOKEN, "dnd:write");
    let first = setup.set(&[
        "--token", "me", "--text", "Focus", "--expire", "1h", "--dnd",
    ]);
    wait_for(
        "the status and the failed part",
        Duration::from_secs(5),
        || slack.received_for("dnd.setSnooze").len() == 1,
    )
    .await;
    assert_eq!(text(&slack), "Focus", "the status went out");
    slack.missing_scopes_clear();
    // A burst mixing the three methods (and reads for restore) on one token: each waits
    // for its own window, so the fake never says 429.
    for i in 0..4 {
        setup.set(&["--token", "me", "--dnd=false"]);
        setup.set(&[
            "--token",
            "me",
            "--presence",
            if i % 2 == 0 { "away" } else { "auto" },
        ]);
        setup.set(&[
            "--token",
            "me",
            "--text",
            &format!("T{i}"),
            "--expire",
            "1h",
            "--restore",
        ]);
        let want = 2 + i;
        wait_for("the burst", Duration::from_secs(10), || {
            slack.received_for("users.setPresence").len() == i + 1
                && slack.received_for("users.profile.set").len() == want
        })
        .await;
    }
    common::stop(&mut child).await;
    assert_eq!(slack.limit_429s(), 0, "no window exceeded");
    assert_eq!(slack.read_429s(), 0, "no read window exceeded");
    let rows = common::rows(&setup.db()).await;
    let dnd = rows
        .iter()
        .find(|r| r.parent == Some(first) && r.patch.part() == Part::Dnd)
        .unwrap();
    assert_eq!(dnd.state, State::Failed);
    assert!(dnd.last_error.as_deref().unwrap().contains("dnd:write"));
    assert!(
        rows.iter().all(|r| r.state != State::Held),
        "the token was not held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_between_the_temporary_status_and_its_restore_still_restores() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let (setup, mut child) = daemon(&slack, "", shows("Writing", ":pencil:", 0)).await;
    setup.set_temporary("Call", "3s");
    wait_text(&slack, "Call", 5).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut child = setup.spawn("again.log", &[("T_ME", TOKEN)]);
    wait_text(&slack, "Writing", 10).await;
    common::stop(&mut child).await;
    assert_eq!(restores(&setup).await[0].state, State::Sent);
}

/// The "done when": a rule with `restore = true` gives the user's own status back,
/// exactly as it was, at the rule's expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lunch_rule_with_restore_gives_the_users_own_status_back_at_its_end() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let rule = "timezone = \"UTC\"\n[[rules]]\nname = \"lunch\"\ntoken = \"me\"\n\
                cron = \"*/5 * * * * *\"\nstatus_text = \"Lunch\"\nstatus_emoji = \":taco:\"\n\
                expire_after = \"2s\"\nrestore = true\n";
    let own = shows("Writing", ":pencil:", 0);
    let (setup, mut child) = daemon(&slack, rule, own.clone()).await;
    wait_text(&slack, "Lunch", 8).await;
    wait_text(&slack, "Writing", 6).await;
    assert_eq!(shown(&slack), own, "exactly as it was");
    common::stop(&mut child).await;
    assert!(restores(&setup)
        .await
        .iter()
        .any(|r| r.state == State::Sent && r.rule.as_deref() == Some("lunch")));
}
