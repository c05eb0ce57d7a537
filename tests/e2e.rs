//! End to end: the real binary against the fake Slack on 127.0.0.1, with the `[limits]`
//! window scaled down to seconds. Waits are for conditions, with deadlines.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{spawn_daemon, wait_exit, wait_for, FakeSlack};
use slack_statusd::queue::{Queue, State};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|s| s.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_users_on_one_admin_token_get_their_status_without_a_single_429() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-admin"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!(
        "database = \"queue.db\"\napi_url = {:?}\ntimezone = \"UTC\"\n[limits]\nper_user = 10\nper_token = 30\nwindow = \"2s\"\n\
         [tokens.admin]\ntoken_env = \"E2E_ADMIN\"\n",
        slack.api_url()
    );
    for i in 0..60 {
        config.push_str(&format!(
            "[[rules]]\nname = \"u{i:02}\"\ntoken = \"admin\"\nuser = \"U{i:02}\"\ncron = \"*/10 * * * * *\"\n\
             status_text = \"Coffee {i}\"\nstatus_emoji = \":coffee:\"\nexpire_after = \"2h\"\n"
        ));
    }
    let cfg = dir.path().join("config.toml");
    write(&cfg, &config);
    let log = dir.path().join("daemon.log");
    let mut child = spawn_daemon(&cfg, &log, &[("E2E_ADMIN", "xoxp-admin")]);

    wait_for(
        "all 60 users to have a status",
        Duration::from_secs(30),
        || (0..60).all(|i| slack.profile("xoxp-admin", &format!("U{i:02}")).is_some()),
    )
    .await;
    common::signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );

    let received = slack.received();
    assert_eq!(
        slack.limit_429s(),
        0,
        "no 429 at all: {:?}",
        received.iter().filter(|r| r.status == 429).count()
    );
    for r in &received {
        // The firing instant is a multiple of 10 s; the expiry is exactly 2 h after it.
        let exp = r.profile["status_expiration"].as_i64().unwrap();
        assert_eq!((exp - 7200) % 10, 0, "expiry {exp} is firing + 2h");
    }
    // The database agrees: each sent row's expiry is its firing instant plus 2 h.
    let q = Queue::open(&dir.path().join("queue.db"), false)
        .await
        .unwrap();
    let rows = q.list(&[State::Sent]).await.unwrap();
    assert!(rows.len() >= 60);
    for row in rows {
        assert_eq!(
            row.patch.status.unwrap().expiration,
            row.fire_at.timestamp() + 7200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_pending_rows_and_a_restart_sends_them() {
    let slack = FakeSlack::start(10, 2, Duration::from_secs(3), &["xoxp-admin"]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    write(
        &cfg,
        &format!(
            "database = \"queue.db\"\napi_url = {:?}\n[limits]\nper_user = 10\nper_token = 2\nwindow = \"3s\"\n\
             [tokens.admin]\ntoken_env = \"E2E_ADMIN\"\n",
            slack.api_url()
        ),
    );
    let log = dir.path().join("daemon.log");
    let envs = [("E2E_ADMIN", "xoxp-admin")];
    let mut child = spawn_daemon(&cfg, &log, &envs);
    wait_for("daemon started", Duration::from_secs(10), || {
        log_has(&log, "started")
    })
    .await;

    for i in 0..6 {
        let out = Command::new(common::bin())
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "set",
                "--token",
                "admin",
                "--user",
            ])
            .arg(format!("U{i}"))
            .args(["--text", &format!("hello {i}"), "--emoji", ":wave:"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "set: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<i64>()
                .is_ok(),
            "set prints the row id"
        );
    }
    wait_for(
        "the first window's two sends",
        Duration::from_secs(5),
        || slack.received().len() == 2,
    )
    .await;
    common::signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0),
        "clean exit on SIGTERM"
    );

    let db = dir.path().join("queue.db");
    {
        let q = Queue::open(&db, false).await.unwrap();
        let pending = q.list(&[State::Pending]).await.unwrap();
        assert_eq!(pending.len(), 4, "the rest stays pending in the database");
        q.close().await;
    }

    let mut child = spawn_daemon(&cfg, &dir.path().join("daemon2.log"), &envs);
    wait_for(
        "every user to get their status",
        Duration::from_secs(15),
        || (0..6).all(|i| slack.profile("xoxp-admin", &format!("U{i}")).is_some()),
    )
    .await;
    common::signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
    let received = slack.received();
    for i in 0..6 {
        let user = format!("U{i}");
        let mine: Vec<_> = received
            .iter()
            .filter(|r| r.user.as_deref() == Some(user.as_str()))
            .collect();
        assert_eq!(mine.len(), 1, "{user} sent exactly once");
        assert_eq!(mine[0].profile["status_text"], format!("hello {i}"));
    }
    assert_eq!(
        slack.limit_429s(),
        0,
        "the restart rebuilt the windows: no 429"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_updates_for_one_target_merge_into_one_request() {
    // One update per target per 3 s: the second and third `set` wait, then merge.
    let slack = FakeSlack::start(1, 30, Duration::from_secs(3), &["xoxp-me"]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    write(
        &cfg,
        &format!(
            "database = \"queue.db\"\napi_url = {:?}\n[limits]\nper_user = 1\nper_token = 30\nwindow = \"3s\"\n\
             [tokens.me]\ntoken_env = \"E2E_ME\"\n",
            slack.api_url()
        ),
    );
    let log = dir.path().join("daemon.log");
    let mut child = spawn_daemon(&cfg, &log, &[("E2E_ME", "xoxp-me")]);
    wait_for("daemon started", Duration::from_secs(10), || {
        log_has(&log, "started")
    })
    .await;
    let set = |text: &str| {
        let out = Command::new(common::bin())
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "set",
                "--token",
                "me",
                "--text",
                text,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    set("one");
    wait_for("the first request", Duration::from_secs(5), || {
        slack.received().len() == 1
    })
    .await;
    set("two");
    set("three");
    wait_for("the merged request", Duration::from_secs(8), || {
        slack.received().len() == 2
    })
    .await;
    common::signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
    let received = slack.received();
    assert_eq!(received.len(), 2, "two and three went out as one request");
    assert_eq!(received[1].profile["status_text"], "three");
    let q = Queue::open(&dir.path().join("queue.db"), false)
        .await
        .unwrap();
    let states: Vec<State> = q
        .list(&[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(
        states,
        vec![State::Sent, State::Superseded, State::Sent],
        "newest first"
    );
}
