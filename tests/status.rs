//! `slack-statusd status` (SPEC §7) with the real binary: with the daemon running (its pid,
//! from the run lock) and stopped, as text and as JSON; a token that works and one that
//! Slack refused; and exit 2 when there is no database.

mod common;

use std::time::Duration;

use common::{rows, wait_until, FakeSlack, Setup};
use serde_json::Value;
use slack_statusd::queue::State;

const GOOD: &str = "xoxp-status-good";

fn config(slack: &FakeSlack) -> Setup {
    Setup::new(
        slack,
        "[tokens.alice]\ntoken = \"xoxp-status-good\"\n\
         [tokens.bob]\ntoken = \"xoxp-status-revoked\"\n\
         [[rules]]\nname = \"coffee\"\ntoken = \"alice\"\nat = \"09:00\"\ntimezone = \"UTC\"\n\
         status_text = \"Coffee\"\nstatus_emoji = \":coffee:\"\n",
    )
}

fn status(setup: &Setup, json: bool) -> (Option<i32>, String, String) {
    let args: &[&str] = if json {
        &["status", "--json"]
    } else {
        &["status"]
    };
    let out = setup.cli(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_daemon_its_tokens_and_next_firings_running_and_stopped() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[GOOD]).await;
    let setup = config(&slack);

    let (code, _, err) = status(&setup, false);
    assert_eq!(code, Some(2), "no database yet: exit 2");
    assert!(err.contains("queue.db"), "names the database: {err}");

    let mut child = setup.spawn("run.log", &[]);
    setup.wait_started("run.log").await;
    setup.set(&["--token", "alice", "--text", "Here"]);
    // bob's first row fails on the refused token; the second is then held.
    setup.set(&["--token", "bob", "--text", "One"]);
    setup.set(&["--token", "bob", "--user", "U2", "--text", "Two"]);
    let db = setup.db();
    wait_until(
        "alice sent, bob failed and held",
        Duration::from_secs(15),
        || {
            let db = db.clone();
            async move {
                let all = rows(&db).await;
                let has = |s: State| all.iter().any(|r| r.state == s);
                has(State::Sent) && has(State::Failed) && has(State::Held)
            }
        },
    )
    .await;

    let (code, text, _) = status(&setup, false);
    assert_eq!(code, Some(0));
    let pid = child.id().to_string();
    assert!(
        text.contains(&format!("daemon: running (pid {pid})")),
        "the running daemon's pid: {text}"
    );
    let alice = text
        .lines()
        .find(|l| l.trim_start().starts_with("alice"))
        .unwrap();
    assert!(
        alice.contains(" ok ") && alice.contains("last send") && alice.ends_with("sent"),
        "{alice}"
    );
    let bob = text
        .lines()
        .find(|l| l.trim_start().starts_with("bob"))
        .unwrap();
    assert!(
        bob.contains("held (token failed: invalid_auth)") && bob.contains("held 1"),
        "{bob}"
    );
    assert!(
        bob.contains("failed (invalid_auth)"),
        "bob's last send failed: {bob}"
    );
    let firings: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "next firings:")
        .skip(1)
        .collect();
    assert_eq!(firings.len(), 5, "the next five firings: {text}");
    assert!(firings
        .iter()
        .all(|l| l.contains("T09:00:00+00:00  coffee  alice")));

    let (code, json, _) = status(&setup, true);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(json.trim()).expect("one JSON object");
    assert_eq!(v["daemon"]["pid"], pid.as_str());
    let tokens = v["tokens"].as_array().unwrap();
    let by_name = |n: &str| tokens.iter().find(|t| t["token"] == n).unwrap().clone();
    assert_eq!(by_name("alice")["state"], "ok");
    assert_eq!(by_name("alice")["last_send"]["outcome"], "sent");
    assert_eq!(by_name("bob")["state"], "held");
    assert_eq!(by_name("bob")["held"], 1);
    assert_eq!(v["next_firings"].as_array().unwrap().len(), 5);

    common::stop(&mut child).await;
    let (code, text, _) = status(&setup, false);
    assert_eq!(code, Some(0), "readable with the daemon stopped");
    assert!(text.contains("daemon: not running"), "{text}");
    assert!(text.contains("alice  ok"), "{text}");
    let (_, json, _) = status(&setup, true);
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    assert!(v["daemon"].is_null(), "no daemon: {v}");
}
