//! Reload of the real binary: a config edit on disk (replaced by rename, as editors do) and
//! SIGHUP re-read the config; an invalid edit is rejected and the old config keeps running;
//! a changed token releases the rows held after its authentication failure.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{spawn_daemon, wait_exit, wait_for, FakeSlack};
use slack_statusd::queue::{Queue, State};

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|s| s.contains(needle))
}

/// Replace `path` the way editors do: write a temporary file, rename it over the original.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config(api: &str, rule: &str) -> String {
    format!(
        "database = \"queue.db\"\napi_url = {api:?}\n[limits]\nwindow = \"2s\"\n\
         [tokens.me]\ntoken_env = \"RELOAD_ME\"\n\
         [[rules]]\nname = \"{rule}\"\ntoken = \"me\"\ncron = \"* * * * * *\"\nstatus_text = \"{rule}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_on_disk_reloads_and_an_invalid_one_is_rejected() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-me"]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config(&slack.api_url(), "old-rule")).unwrap();
    let log = dir.path().join("daemon.log");
    let mut child = spawn_daemon(&cfg, &log, &[("RELOAD_ME", "xoxp-me")]);
    let sent = |text: &'static str| {
        let slack = slack.clone();
        move || {
            slack
                .received()
                .iter()
                .any(|r| r.profile["status_text"] == text)
        }
    };
    wait_for("old-rule fires", Duration::from_secs(10), sent("old-rule")).await;

    replace_file(&cfg, &config(&slack.api_url(), "new-rule"));
    wait_for("reloaded from the edit", Duration::from_secs(10), || {
        log_has(&log, "reloaded")
    })
    .await;
    wait_for("new-rule fires", Duration::from_secs(10), sent("new-rule")).await;
    let old_after: usize = {
        let r = slack.received();
        let first_new = r
            .iter()
            .position(|r| r.profile["status_text"] == "new-rule")
            .unwrap();
        r[first_new..]
            .iter()
            .filter(|r| r.profile["status_text"] == "old-rule")
            .count()
    };
    assert_eq!(old_after, 0, "a removed rule stops firing");

    // An invalid edit: the daemon says why, with file:line:col, and keeps the old config.
    replace_file(
        &cfg,
        &config(&slack.api_url(), "new-rule")
            .replace("cron = \"* * * * * *\"", "cron = \"* * * *\""),
    );
    wait_for("reload rejected", Duration::from_secs(10), || {
        log_has(&log, "reload rejected")
    })
    .await;
    assert!(log_has(&log, "config.toml:"), "names the file");
    let before = slack.received().len();
    wait_for(
        "still firing on the old config",
        Duration::from_secs(10),
        || slack.received().len() > before + 1,
    )
    .await;

    common::signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_fixed_token_releases_its_held_rows() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-good"]).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "xoxp-revoked\n").unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = \"queue.db\"\napi_url = {:?}\n[tokens.admin]\ntoken_file = {:?}\n",
            slack.api_url(),
            token_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let mut child = spawn_daemon(&cfg, &log, &[]);
    wait_for("daemon started", Duration::from_secs(10), || {
        log_has(&log, "started")
    })
    .await;
    for user in ["U1", "U2", "U3"] {
        let out = std::process::Command::new(common::bin())
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "set",
                "--token",
                "admin",
                "--user",
                user,
                "--text",
                "hi",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let db = dir.path().join("queue.db");
    let q = Queue::open(&db, false).await.unwrap();
    let settled = || async {
        let rows = q.list(&[]).await.unwrap();
        rows.iter().filter(|r| r.state == State::Failed).count() == 1
            && rows.iter().filter(|r| r.state == State::Held).count() == 2
    };
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !settled().await {
        assert!(
            std::time::Instant::now() < end,
            "one failure, two held: {:?}",
            q.list(&[]).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        slack.received().len(),
        1,
        "a dead token costs one request, not one per row"
    );

    std::fs::write(&token_file, "xoxp-good\n").unwrap();
    common::signal(&child, "HUP");
    wait_for(
        "held rows sent with the new token",
        Duration::from_secs(10),
        || {
            slack
                .received()
                .iter()
                .filter(|r| r.token == "xoxp-good" && r.status == 200)
                .count()
                == 2
        },
    )
    .await;
    common::signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
    let rows = q.list(&[]).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.state == State::Sent).count(), 2);
    assert!(
        !std::fs::read(&db)
            .unwrap()
            .windows(12)
            .any(|w| w == b"xoxp-revoked"),
        "no token in the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_drop_in_reloads_like_the_main_file() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-me"]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = \"queue.db\"\napi_url = {:?}\n[limits]\nwindow = \"2s\"\n",
            slack.api_url()
        ),
    )
    .unwrap();
    let dropins = dir.path().join("config.d");
    std::fs::create_dir(&dropins).unwrap();
    let person = |rule: &str| {
        format!(
            "[tokens.alice]\ntoken_env = \"RELOAD_ME\"\n[[rules]]\nname = \"{rule}\"\n\
             token = \"alice\"\ncron = \"* * * * * *\"\nstatus_text = \"{rule}\"\n"
        )
    };
    std::fs::write(dropins.join("alice.toml"), person("alice-one")).unwrap();
    let log = dir.path().join("daemon.log");
    let mut child = spawn_daemon(&cfg, &log, &[("RELOAD_ME", "xoxp-me")]);
    let sent = |text: &'static str| {
        let slack = slack.clone();
        move || {
            slack
                .received()
                .iter()
                .any(|r| r.profile["status_text"] == text)
        }
    };
    wait_for(
        "alice-one fires",
        Duration::from_secs(10),
        sent("alice-one"),
    )
    .await;
    replace_file(&dropins.join("alice.toml"), &person("alice-two"));
    wait_for(
        "alice-two fires after the drop-in changed",
        Duration::from_secs(10),
        sent("alice-two"),
    )
    .await;
    assert!(log_has(&log, "reloaded"));
    common::signal(&child, "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
}
