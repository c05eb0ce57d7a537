//! End to end: the real binary against the fake Slack on 127.0.0.1, with the `[limits]`
//! window scaled down to seconds. Waits are for conditions, with deadlines.

mod common;

use std::time::Duration;

use common::{wait_for, FakeSlack, Setup};
use slack_statusd::queue::{Queue, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_users_on_one_admin_token_get_their_status_without_a_single_429() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(2), &["xoxp-admin"]).await;
    let mut body = String::from(
        "timezone = \"UTC\"\n[limits]\nper_user = 10\nper_token = 30\nwindow = \"2s\"\n\
         [tokens.admin]\ntoken_env = \"E2E_ADMIN\"\n",
    );
    for i in 0..60 {
        body.push_str(&format!(
            "[[rules]]\nname = \"u{i:02}\"\ntoken = \"admin\"\nuser = \"U{i:02}\"\ncron = \"*/10 * * * * *\"\n\
             status_text = \"Coffee {i}\"\nstatus_emoji = \":coffee:\"\nexpire_after = \"2h\"\n"
        ));
    }
    let setup = Setup::new(&slack, &body);
    let mut child = setup.spawn("daemon.log", &[("E2E_ADMIN", "xoxp-admin")]);

    wait_for(
        "all 60 users to have a status",
        Duration::from_secs(30),
        || (0..60).all(|i| slack.profile("xoxp-admin", &format!("U{i:02}")).is_some()),
    )
    .await;
    common::stop(&mut child).await;

    assert_eq!(slack.limit_429s(), 0, "no 429 at all");
    for r in &slack.received() {
        // The firing instant is a multiple of 10 s; the expiry is exactly 2 h after it.
        let exp = r.profile["status_expiration"].as_i64().unwrap();
        assert_eq!((exp - 7200) % 10, 0, "expiry {exp} is firing + 2h");
    }
    // The database agrees: each sent row's expiry is its firing instant plus 2 h.
    let q = Queue::open(&setup.db(), false).await.unwrap();
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
    let setup = Setup::new(
        &slack,
        "[limits]\nper_user = 10\nper_token = 2\nwindow = \"3s\"\n[tokens.admin]\ntoken_env = \"E2E_ADMIN\"\n",
    );
    let envs = [("E2E_ADMIN", "xoxp-admin")];
    let mut child = setup.spawn("daemon.log", &envs);
    setup.wait_started("daemon.log").await;

    for i in 0..6 {
        let (user, text) = (format!("U{i}"), format!("hello {i}"));
        setup.set(&[
            "--token", "admin", "--user", &user, "--text", &text, "--emoji", ":wave:",
        ]);
    }
    wait_for(
        "the first window's two sends",
        Duration::from_secs(5),
        || slack.received().len() == 2,
    )
    .await;
    common::stop(&mut child).await;

    {
        let q = Queue::open(&setup.db(), false).await.unwrap();
        let pending = q.list(&[State::Pending]).await.unwrap();
        assert_eq!(pending.len(), 4, "the rest stays pending in the database");
        q.close().await;
    }

    let mut child = setup.spawn("daemon2.log", &envs);
    wait_for(
        "every user to get their status",
        Duration::from_secs(15),
        || (0..6).all(|i| slack.profile("xoxp-admin", &format!("U{i}")).is_some()),
    )
    .await;
    common::stop(&mut child).await;
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
    let setup = Setup::new(
        &slack,
        "[limits]\nper_user = 1\nper_token = 30\nwindow = \"3s\"\n[tokens.me]\ntoken_env = \"E2E_ME\"\n",
    );
    let mut child = setup.spawn("daemon.log", &[("E2E_ME", "xoxp-me")]);
    setup.wait_started("daemon.log").await;
    setup.set(&["--token", "me", "--text", "one"]);
    wait_for("the first request", Duration::from_secs(5), || {
        slack.received().len() == 1
    })
    .await;
    setup.set(&["--token", "me", "--text", "two"]);
    setup.set(&["--token", "me", "--text", "three"]);
    wait_for("the merged request", Duration::from_secs(8), || {
        slack.received().len() == 2
    })
    .await;
    common::stop(&mut child).await;
    let received = slack.received();
    assert_eq!(received.len(), 2, "two and three went out as one request");
    assert_eq!(received[1].profile["status_text"], "three");
    let q = Queue::open(&setup.db(), false).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_commands_list_retry_and_drop_while_the_daemon_runs() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-me"]).await;
    slack.script(
        "xoxp-me",
        vec![common::Scripted::Reply(
            200,
            None,
            r#"{"ok":false,"error":"not_admin"}"#.into(),
        )],
    );
    let setup = Setup::new(&slack, "[tokens.me]\ntoken_env = \"E2E_ME\"\n");
    let mut child = setup.spawn("daemon.log", &[("E2E_ME", "xoxp-me")]);
    setup.wait_started("daemon.log").await;
    let id = setup.set(&["--token", "me", "--user", "U1", "--text", "first"]);
    let failed = || {
        let out = setup.cli(&["queue", "failed", "--json"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    wait_for(
        "the row fails with Slack's code",
        Duration::from_secs(5),
        || !failed().is_empty(),
    )
    .await;
    let row = &failed()[0];
    assert_eq!(row["id"], id);
    assert_eq!(row["state"], "failed");
    assert_eq!(row["last_error"], "not_admin");
    assert_eq!(row["user"], "U1");

    // Text listing: id, state, target, instant, attempts, last error.
    let list = String::from_utf8_lossy(&setup.cli(&["queue", "list"]).stdout).into_owned();
    assert!(
        list.contains(&format!("{id}"))
            && list.contains("failed")
            && list.contains("me/U1")
            && list.contains("not_admin"),
        "{list}"
    );

    // `queue retry` puts it back; the running daemon picks it up within a second or so.
    let out = setup.cli(&["queue", "retry", &id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the retried row is sent", Duration::from_secs(5), || {
        slack
            .received()
            .iter()
            .filter(|r| r.status == 200 && r.profile["status_text"] == "first")
            .count()
            == 2
    })
    .await;
    wait_for("its state is sent", Duration::from_secs(5), || {
        String::from_utf8_lossy(&setup.cli(&["queue", "list", "--json"]).stdout)
            .contains("\"sent\"")
    })
    .await;

    // `queue drop` deletes a finished row; dropping it again is an input error.
    assert!(setup
        .cli(&["queue", "drop", &id.to_string()])
        .status
        .success());
    assert_eq!(
        setup.cli(&["queue", "drop", &id.to_string()]).status.code(),
        Some(1)
    );
    assert_eq!(setup.cli(&["queue", "retry", "999"]).status.code(), Some(1));
    assert!(
        setup.cli(&["queue", "--json"]).stdout.is_empty(),
        "the queue is empty"
    );

    common::stop(&mut child).await;
}
