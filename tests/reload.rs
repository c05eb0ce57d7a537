//! Reload of the real binary: a config edit on disk (replaced by rename, as editors do) and
//! SIGHUP re-read the config; an invalid edit is rejected and the old config keeps running;
//! a changed token releases the rows held after its authentication failure; `log_level` and
//! `retention` take effect without a restart.

mod common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
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

/// How many lines of the log contain every one of `needles`.
fn lines_with(log: &std::path::Path, needles: &[&str]) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_the_log_level_both_ways() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-me"]).await;
    let body = |level: &str, rule: &str| {
        format!("log_level = \"{level}\"\n{ME}{}", every_second("me", rule))
    };
    let setup = Setup::new(&slack, &body("debug", "loud-rule"));
    let log = setup.path("daemon.log");
    let mut child = setup.spawn("daemon.log", &[("RELOAD_ME", "xoxp-me")]);
    wait_for("loud-rule's firing logged", Duration::from_secs(10), || {
        lines_with(&log, &["fired", "loud-rule"]) > 0
    })
    .await;
    assert!(lines_with(&log, &["DEBUG"]) > 0, "debug lines under debug");

    // Down to warn: the rule new in this config fires and is sent, and no line says so.
    setup.write_config(&setup.config_text(&slack, &body("warn", "quiet-rule")));
    let quiet_sent = || {
        slack
            .received()
            .iter()
            .filter(|r| r.profile["status_text"] == "quiet-rule")
            .count()
    };
    wait_for(
        "quiet-rule sent three times",
        Duration::from_secs(15),
        || quiet_sent() >= 3,
    )
    .await;
    assert_eq!(
        lines_with(&log, &["log_level changed", "to=\"warn\""]),
        1,
        "the last line under debug says what changed"
    );
    assert_eq!(
        lines_with(&log, &["quiet-rule"]),
        0,
        "nothing at info or debug after the switch to warn"
    );

    // Back up to info: firings are logged again, debug lines are not.
    let debug_before = lines_with(&log, &["DEBUG"]);
    setup.write_config(&setup.config_text(&slack, &body("info", "back-rule")));
    wait_for("back-rule's firing logged", Duration::from_secs(15), || {
        lines_with(&log, &["fired", "back-rule"]) > 0
    })
    .await;
    assert_eq!(
        lines_with(&log, &["DEBUG"]),
        debug_before,
        "no debug line under info"
    );
    common::stop(&mut child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_shortens_retention_purges_old_rows_without_a_restart() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-me"]).await;
    // The default retention, 30 days: nothing sent now is purged.
    let setup = Setup::new(&slack, ME);
    let log = setup.path("daemon.log");
    let mut child = setup.spawn("daemon.log", &[("RELOAD_ME", "xoxp-me")]);
    setup.wait_started("daemon.log").await;
    let sent_rows = || lines_with(&log, &["sent"]);

    let old = setup.set(&["--token", "me", "--text", "old"]);
    wait_for("the old row sent", Duration::from_secs(10), || {
        sent_rows() == 1
    })
    .await;
    let finished = common::rows(&setup.db()).await[0].updated_at;
    // The new retention is 5 s: wait until the old row is past it.
    let retention = TimeDelta::seconds(5);
    wait_for(
        "the old row older than the new retention",
        Duration::from_secs(10),
        || Utc::now() - finished > retention + TimeDelta::milliseconds(500),
    )
    .await;
    let fresh = setup.set(&["--token", "me", "--text", "fresh"]);
    wait_for("the fresh row sent", Duration::from_secs(10), || {
        sent_rows() == 2
    })
    .await;
    let ids =
        |rows: Vec<slack_statusd::queue::Update>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(common::rows(&setup.db()).await),
        [fresh, old],
        "both kept under 30d"
    );

    setup.write_config(&setup.config_text(&slack, &format!("retention = \"5s\"\n{ME}")));
    wait_for(
        "the purge after the reload",
        Duration::from_secs(10),
        || log_has(&log, "deleted finished rows older than retention"),
    )
    .await;
    let rows = common::rows(&setup.db()).await;
    assert_eq!(
        ids(rows.clone()),
        [fresh],
        "the old row purged, the fresh one kept"
    );
    assert_eq!(rows[0].state, State::Sent);
    common::stop(&mut child).await;
}

/// A config file swapped for a FIFO that nobody writes: the reload it triggers can never
/// finish reading, and SIGTERM must still stop the daemon at once (exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_daemon_whose_reload_hangs_on_a_fifo_config() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-fifo"]).await;
    let setup = Setup::new(&slack, "[tokens.me]\ntoken = \"xoxp-fifo\"\n");
    let mut child = setup.spawn("run.log", &[]);
    setup.wait_started("run.log").await;
    std::fs::remove_file(&setup.cfg).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&setup.cfg)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    // The swap is a change on disk: the daemon starts a reload that blocks on the FIFO. SIGHUP
    // makes sure one is under way whatever the watcher saw.
    common::signal(&child, "HUP");
    let log = setup.path("run.log");
    wait_for("the reload began", Duration::from_secs(10), || {
        log_has(&log, "reloading the config")
    })
    .await;
    common::stop(&mut child).await;
}
