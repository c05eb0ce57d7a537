//! A Slack that answers what no Slack should, against the real binary: `Retry-After` in every
//! form RFC 9110 allows and some it does not, huge and forged error texts, bodies of 50 MB
//! and more, and a redirect to another server. The daemon waits as long as it is told,
//! stays small, logs and stores only escaped, bounded text, and follows no redirect.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use common::{wait_for, FakeSlack, Scripted, Setup};
use slack_statusd::queue::{State, Update};

const RATELIMITED: &str = r#"{"ok":false,"error":"ratelimited"}"#;

/// Short backoffs, so that a `Retry-After` taken as unusable would show as a retry within
/// a fraction of a second.
const RETRY: &str =
    "[retry]\nmax_attempts = 8\ninitial_backoff = \"50ms\"\nmax_backoff = \"100ms\"\n";

/// A config with `RETRY` and one token per name, the token `NAME` read from `$H_NAME`.
fn config(names: &[&str]) -> (String, Vec<(String, String)>) {
    let mut body = RETRY.to_string();
    let mut envs = Vec::new();
    for n in names {
        body.push_str(&format!("[tokens.{n}]\ntoken_env = \"H_{n}\"\n"));
        envs.push((format!("H_{n}"), value(n)));
    }
    (body, envs)
}

/// A fake Slack that accepts the tokens named `names`.
async fn fake(names: &[&str]) -> FakeSlack {
    let values: Vec<String> = names.iter().map(|n| value(n)).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    FakeSlack::start(10, 30, Duration::from_secs(60), &refs).await
}

/// The token value of the token named `name`.
fn value(name: &str) -> String {
    format!("xoxp-hostile-{name}")
}

fn env_refs(envs: &[(String, String)]) -> Vec<(&str, &str)> {
    envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The instant of the wall-clock time `t`, on the clock the fake records arrivals with.
fn instant_of(t: DateTime<Utc>) -> Instant {
    let ahead = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + ahead
}

/// The row of the queue whose target is `token`'s own profile.
fn row_of<'a>(rows: &'a [Update], token: &str) -> &'a Update {
    rows.iter()
        .find(|r| r.target.token == token)
        .unwrap_or_else(|| panic!("no row for {token}"))
}

/// Every line of the log: no raw control character, none longer than `max` bytes.
fn assert_log_is_safe(log: &std::path::Path, max: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap();
    for (n, line) in text.lines().enumerate() {
        assert!(
            !line.chars().any(char::is_control),
            "log line {n} has a raw control character: {:?}",
            &line[..line.len().min(300)]
        );
        assert!(line.len() <= max, "log line {n} is {} bytes", line.len());
    }
    assert!(!text.contains("panicked"), "a task panicked:\n{text}");
    text
}

/// The peak resident set of a process, in bytes (`VmHWM` in /proc).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_in_every_form_is_waited_for_in_full() {
    let names = ["imf", "rfc850", "asctime", "negative", "day", "eon"];
    let slack = fake(&names).await;
    let (body, envs) = config(&names);
    let setup = Setup::new(&slack, &body);
    let mut child = setup.spawn("daemon.log", &env_refs(&envs));
    setup.wait_started("daemon.log").await;

    // An HTTP-date about 3 s ahead, on a whole second as HTTP-dates are.
    let now = Utc::now();
    let ra = now.with_nanosecond(0).unwrap() + TimeDelta::seconds(4);
    let until = instant_of(ra);
    let limited =
        |retry_after: &str| Scripted::raw(429, &[("retry-after", retry_after)], RATELIMITED);
    slack.script(
        &value("imf"),
        vec![limited(&ra.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).blocking(until)],
    );
    slack.script(
        &value("rfc850"),
        vec![limited(&ra.format("%A, %d-%b-%y %H:%M:%S GMT").to_string()).blocking(until)],
    );
    slack.script(
        &value("asctime"),
        vec![limited(&ra.format("%a %b %e %H:%M:%S %Y").to_string()).blocking(until)],
    );
    // Unusable: backs off as for a transient failure (50–100 ms here).
    slack.script(&value("negative"), vec![limited("-1")]);
    // Longer than a day, and longer than any clock can count: waited for, no panic.
    let far = Instant::now() + Duration::from_secs(999_999);
    slack.script(&value("day"), vec![limited("999999").blocking(far)]);
    slack.script(
        &value("eon"),
        vec![limited("100000000000000000000000000000").blocking(far)],
    );
    for n in names {
        setup.set(&["--token", n, "--text", n]);
    }

    let sent_by = |token: &str| {
        slack
            .received()
            .iter()
            .filter(|r| r.token == value(token))
            .map(|r| r.at)
            .collect::<Vec<_>>()
    };
    wait_for("the dated retries", Duration::from_secs(15), || {
        ["imf", "rfc850", "asctime", "negative"]
            .iter()
            .all(|n| sent_by(n).len() == 2)
    })
    .await;
    let db_rows = common::rows(&setup.db()).await;
    for n in ["imf", "rfc850", "asctime"] {
        let at = sent_by(n);
        assert!(at[0] < until, "{n}: the 429 came before the date it names");
        assert!(
            at[1] >= until,
            "{n}: retried {:?} before the date",
            until - at[1]
        );
        assert!(
            at[1] < until + Duration::from_secs(3),
            "{n}: retried {:?} after the date",
            at[1] - until
        );
        let row = row_of(&db_rows, n);
        assert_eq!((row.state, row.attempts), (State::Sent, 0), "{n}");
    }
    let at = sent_by("negative");
    assert!(
        at[1] - at[0] >= Duration::from_millis(25),
        "negative: backed off"
    );
    assert_eq!(row_of(&db_rows, "negative").state, State::Sent);
    // The long waits: still waiting, without having spent an attempt, and the operator sees
    // how long.
    for n in ["day", "eon"] {
        assert_eq!(sent_by(n).len(), 1, "{n}: no retry before the wait ends");
        let row = row_of(&db_rows, n);
        assert_eq!((row.state, row.attempts), (State::Pending, 0), "{n}");
    }
    assert_eq!(
        slack.early_after_429(),
        0,
        "no request before Retry-After ended"
    );
    common::stop(&mut child).await;
    let log = assert_log_is_safe(&setup.path("daemon.log"), 4096);
    assert!(
        log.contains("wait_secs=999999"),
        "the long pause is logged:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("pause for a long time")),
        "at warn:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_texts_and_huge_bodies_stay_bounded() {
    let names = ["forged", "long", "huge", "stream", "endless", "warned"];
    let slack = fake(&names).await;
    let error = |text: &str| serde_json::json!({"ok": false, "error": text}).to_string();
    let forged = "not_admin\n2026-10-21T07:28:00Z  INFO slack_statusd: sent \u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}";
    // Under the body cap, so it reaches the classification: bounded there.
    // 150,000 ESCs are 900 KB as JSON (`\u001b` each).
    let long = format!("x{}", "\u{1b}".repeat(150_000));
    let stuck = |s: Scripted| vec![s];
    slack.script(
        &value("forged"),
        stuck(Scripted::raw(200, &[], error(forged))),
    );
    slack.script(&value("long"), stuck(Scripted::raw(200, &[], error(&long))));
    // Over the cap: a 10 MB error with a Content-Length, and 50 MB and endless bodies
    // streamed without one. Each is a transient error; the retry then goes out normally.
    let ten_mb = error(&"e".repeat(10 << 20));
    slack.script(&value("huge"), stuck(Scripted::raw(200, &[], ten_mb)));
    slack.script(
        &value("stream"),
        stuck(Scripted::Stream {
            status: 200,
            len: 50 << 20,
        }),
    );
    slack.script(
        &value("endless"),
        stuck(Scripted::Stream {
            status: 200,
            len: u64::MAX,
        }),
    );
    let warned =
        serde_json::json!({"ok": true, "warning": "superfluous_charset\r\nFAKE LINE\u{1b}[31m"});
    slack.script(
        &value("warned"),
        stuck(Scripted::raw(200, &[], warned.to_string())),
    );

    let (body, envs) = config(&names);
    let setup = Setup::new(&slack, &body);
    let mut child = setup.spawn("daemon.log", &env_refs(&envs));
    setup.wait_started("daemon.log").await;
    for n in names {
        setup.set(&["--token", n, "--text", n]);
    }
    let db = setup.db();
    let settled = |rows: &[Update]| {
        rows.len() == names.len()
            && rows
                .iter()
                .all(|r| !matches!(r.state, State::Pending | State::InFlight))
    };
    let end = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let rows = common::rows(&db).await;
        if settled(&rows) {
            break rows;
        }
        assert!(Instant::now() < end, "rows did not settle: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let peak = peak_rss(child.id());
    common::stop(&mut child).await;

    assert!(peak < 100 << 20, "peak RSS {} MB", peak >> 20);
    for row in &rows {
        let error = row.last_error.as_deref().unwrap_or("");
        assert!(
            error.len() <= 2200,
            "{}: last_error of {} bytes",
            row.target,
            error.len()
        );
        assert!(
            !error.chars().any(char::is_control),
            "{}: {error:?}",
            row.target
        );
    }
    let forged_row = row_of(&rows, "forged");
    assert_eq!(forged_row.state, State::Failed);
    assert_eq!(
        forged_row.last_error.as_deref(),
        Some("not_admin\\n2026-10-21T07:28:00Z  INFO slack_statusd: sent \\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{9b}")
    );
    let long_row = row_of(&rows, "long");
    assert_eq!(long_row.state, State::Failed);
    assert!(long_row
        .last_error
        .as_deref()
        .is_some_and(|e| e.starts_with("x\\u{1b}") && e.contains("[cut: ")));
    for n in ["huge", "stream", "endless"] {
        let row = row_of(&rows, n);
        assert_eq!(
            (row.state, row.attempts),
            (State::Sent, 1),
            "{n}: retried, then sent"
        );
        assert!(
            row.last_error
                .as_deref()
                .is_some_and(|e| e.contains("response body over 1048576 bytes")),
            "{n}: {:?}",
            row.last_error
        );
    }
    assert_eq!(row_of(&rows, "warned").state, State::Sent);

    let log = assert_log_is_safe(&setup.path("daemon.log"), 4096);
    assert!(
        log.contains("\\u{1b}[2J"),
        "the forged error is logged escaped"
    );
    assert!(
        log.contains("superfluous_charset\\r\\nFAKE LINE"),
        "so is the warning"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_names_only_the_host() {
    let slack = fake(&["me"]).await;
    let elsewhere = fake(&["me"]).await;
    let location = format!(
        "http://{}/api/users.profile.set?token=secret-in-query",
        elsewhere.addr
    );
    slack.script(
        &value("me"),
        vec![Scripted::raw(307, &[("location", location.as_str())], "")],
    );
    let (body, envs) = config(&["me"]);
    let setup = Setup::new(&slack, &body);
    let mut child = setup.spawn("daemon.log", &env_refs(&envs));
    setup.wait_started("daemon.log").await;
    let id = setup.set(&["--token", "me", "--text", "here"]);
    // Either the retry reaches Slack, or (the fault this test is for) the redirect was
    // followed to the other server.
    wait_for(
        "the retry after the redirect",
        Duration::from_secs(10),
        || slack.profile(&value("me"), "").is_some() || !elsewhere.received().is_empty(),
    )
    .await;
    common::stop(&mut child).await;

    assert!(
        elsewhere.received().is_empty(),
        "the other server got nothing"
    );
    let rows = common::rows(&setup.db()).await;
    let row = rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!((row.state, row.attempts), (State::Sent, 1));
    let error = row.last_error.as_deref().unwrap_or("");
    assert!(
        error.contains(&format!("redirect to {}", elsewhere.addr)),
        "names the host: {error}"
    );
    assert!(
        !error.contains("secret") && !error.contains("/api"),
        "{error}"
    );
    let log = assert_log_is_safe(&setup.path("daemon.log"), 4096);
    assert!(
        !log.contains("secret-in-query"),
        "the full Location is never logged"
    );
}
