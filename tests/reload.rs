//! Reload of the real binary: a config edit on disk (replaced by rename, as editors do) and
//! SIGHUP re-read the config; an invalid edit is rejected and the old config keeps running;
//! a changed token releases the rows held after its authentication failure.

mod common;

use std::time::Duration;

use common::{log_has, replace_file, wait_for, wait_until, FakeSlack, Setup};
use slack_statusd::queue::{Queue, State};

/// A rule named `rule` that fires every second and sets its own name as the status text.
fn every_second(token: &str, rule: &str) -> String {
    format!(
        "[[rules]]\nname = \"{rule}\"\ntoken = \"{token}\"\ncron = \"* * * * * *\"\nstatus_text = \"{rule}\"\n"
    )
}

/// Whether the fake received a request setting `text`.
fn sent(slack: &FakeSlack, text: &'static str) -> impl FnMut() -> bool {
    let slack = slack.clone();
    move || {
        slack
            .received()
            .iter()
            .any(|r| r.profile["status_text"] == text)
    }
}

const ME: &str = "[limits]\nwindow = \"2s\"\n[tokens.me]\ntoken_env = \"RELOAD_ME\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_on_disk_reloads_and_an_invalid_one_is_rejected() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-me"]).await;
    let setup = Setup::new(&slack, &format!("{ME}{}", every_second("me", "old-rule")));
    let log = setup.path("daemon.log");
    let mut child = setup.spawn("daemon.log", &[("RELOAD_ME", "xoxp-me")]);
    wait_for(
        "old-rule fires",
        Duration::from_secs(10),
        sent(&slack, "old-rule"),
    )
    .await;

    let new_config = setup.config_text(&slack, &format!("{ME}{}", every_second("me", "new-rule")));
    setup.write_config(&new_config);
    wait_for("reloaded from the edit", Duration::from_secs(10), || {
        log_has(&log, "reloaded")
    })
    .await;
    wait_for(
        "new-rule fires",
        Duration::from_secs(10),
        sent(&slack, "new-rule"),
    )
    .await;
    let r = slack.received();
    let first_new = r
        .iter()
        .position(|r| r.profile["status_text"] == "new-rule")
        .unwrap();
    let old_after = r[first_new..]
        .iter()
        .filter(|r| r.profile["status_text"] == "old-rule")
        .count();
    assert_eq!(old_after, 0, "a removed rule stops firing");

    // An invalid edit: the daemon says why, with file:line:col, and keeps the old config.
    setup.write_config(&new_config.replace("cron = \"* * * * * *\"", "cron = \"* * * *\""));
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

    common::stop(&mut child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_fixed_token_releases_its_held_rows() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-good"]).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "xoxp-revoked\n").unwrap();
    let setup = Setup::new(
        &slack,
        &format!(
            "[tokens.admin]\ntoken_file = {:?}\n",
            token_file.to_str().unwrap()
        ),
    );
    let mut child = setup.spawn("daemon.log", &[]);
    setup.wait_started("daemon.log").await;
    for user in ["U1", "U2", "U3"] {
        setup.set(&["--token", "admin", "--user", user, "--text", "hi"]);
    }
    let q = Queue::open(&setup.db(), false).await.unwrap();
    wait_until("one failure, two held", Duration::from_secs(10), || async {
        let rows = q.list(&[]).await.unwrap();
        let settled = rows.iter().filter(|r| r.state == State::Failed).count() == 1
            && rows.iter().filter(|r| r.state == State::Held).count() == 2;
        settled.then_some(()).ok_or_else(|| format!("{rows:?}"))
    })
    .await;
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
    common::stop(&mut child).await;
    let rows = q.list(&[]).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.state == State::Sent).count(), 2);
    let bytes = std::fs::read(setup.db()).unwrap();
    assert!(
        !bytes.windows(12).any(|w| w == b"xoxp-revoked"),
        "no token in the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_drop_in_reloads_like_the_main_file() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-me"]).await;
    let setup = Setup::new(&slack, "[limits]\nwindow = \"2s\"\n");
    let dropins = setup.path("config.d");
    std::fs::create_dir(&dropins).unwrap();
    let person = |rule: &str| {
        format!(
            "[tokens.alice]\ntoken_env = \"RELOAD_ME\"\n{}",
            every_second("alice", rule)
        )
    };
    std::fs::write(dropins.join("alice.toml"), person("alice-one")).unwrap();
    let mut child = setup.spawn("daemon.log", &[("RELOAD_ME", "xoxp-me")]);
    wait_for(
        "alice-one fires",
        Duration::from_secs(10),
        sent(&slack, "alice-one"),
    )
    .await;
    replace_file(&dropins.join("alice.toml"), &person("alice-two"));
    wait_for(
        "alice-two fires after the drop-in changed",
        Duration::from_secs(10),
        sent(&slack, "alice-two"),
    )
    .await;
    assert!(log_has(&setup.path("daemon.log"), "reloaded"));
    common::stop(&mut child).await;
}
