//! `[http]` end to end (SPEC §7): the real binary serves `/metrics`, `/healthz` and
//! `/readyz` where `listen` says. Port 0 takes a free port, which the daemon logs ("serving
//! /metrics, /healthz and /readyz on http://ADDR"); the tests read it from the log, so no
//! port is picked and released (and possibly taken by another test) in between.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{wait_for, wait_until, FakeSlack, Setup};

const TOKEN: &str = "xoxp-metrics-secret-4242";

/// The address of the `n`th server (counting from 1) the daemon logging to `log` started.
async fn served_on(log: &Path, n: usize) -> SocketAddr {
    const NEEDLE: &str = "serving /metrics, /healthz and /readyz on http://";
    wait_until(
        "the /metrics server to start",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let found = text.match_indices(NEEDLE).nth(n - 1).and_then(|(i, _)| {
                let rest = &text[i + NEEDLE.len()..];
                let end = rest.find(|c: char| c.is_whitespace() || c == '\u{1b}')?;
                rest[..end].parse::<SocketAddr>().ok()
            });
            std::future::ready(found)
        },
    )
    .await
}

/// GET `path` from `addr`: status and body.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let r = reqwest::get(format!("http://{addr}{path}"))
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    Ok((status, r.text().await.map_err(|e| e.to_string())?))
}

/// Wait until `/metrics` on `addr` has every line of `lines`; the text.
async fn scrape_until(addr: SocketAddr, lines: &[&str]) -> String {
    wait_until(
        "the metrics to show the send",
        Duration::from_secs(10),
        || async {
            let (status, text) = get(addr, "/metrics").await?;
            match lines.iter().find(|l| !text.lines().any(|t| t == **l)) {
                None if status == 200 => Ok(text),
                missing => Err(format!("{status}, missing {missing:?} in:\n{text}")),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_shows_in_metrics_and_the_daemon_is_ready_and_healthy() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let setup = Setup::new(
        &slack,
        "[http]\nlisten = \"127.0.0.1:0\"\n[tokens.alice]\ntoken_env = \"M_TOKEN\"\n",
    );
    let mut child = setup.spawn("daemon.log", &[("M_TOKEN", TOKEN)]);
    let addr = served_on(&setup.path("daemon.log"), 1).await;
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    setup.wait_started("daemon.log").await;
    wait_until("/readyz 200", Duration::from_secs(10), || async {
        get(addr, "/readyz").await.ok().filter(|(s, _)| *s == 200)
    })
    .await;
    assert_eq!(get(addr, "/healthz").await.unwrap().0, 200);

    setup.set(&[
        "--token", "alice", "--text", "Coffee", "--emoji", ":coffee:",
    ]);
    wait_for("the send", Duration::from_secs(10), || {
        slack.received().len() == 1
    })
    .await;
    let version = env!("CARGO_PKG_VERSION");
    let build = format!("slack_statusd_build_info{{version=\"{version}\"}} 1");
    let text = scrape_until(
        addr,
        &[
            "slack_statusd_requests_total{method=\"users.profile.set\",outcome=\"ok\"} 1",
            "slack_statusd_updates{state=\"sent\"} 1",
            "slack_statusd_updates{state=\"pending\"} 0",
            "slack_statusd_oldest_due_seconds 0.0",
            "slack_statusd_firing_delay_seconds_count 1",
            "slack_statusd_tokens{state=\"ok\"} 1",
            "slack_statusd_tokens{state=\"held\"} 0",
            &build,
        ],
    )
    .await;
    for name in [
        "slack_statusd_throttle_wait_seconds_total",
        "slack_statusd_next_firing_timestamp_seconds",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} in:\n{text}"
        );
    }
    assert!(
        !text.contains(TOKEN) && !text.contains("xoxp-"),
        "no token value:\n{text}"
    );
    assert!(
        !text.contains("token=\"alice\""),
        "token_labels is off:\n{text}"
    );
    assert!(!text.contains(&slack.api_url()), "no URL:\n{text}");
    assert_eq!(get(addr, "/nope").await.unwrap().0, 404);
    common::stop(&mut child).await;
    assert!(
        get(addr, "/metrics").await.is_err(),
        "the server stops with the daemon"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_labels_name_tokens_and_a_held_token_but_never_show_a_value() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let dead = "xoxp-revoked-secret-9999";
    let setup = Setup::new(
        &slack,
        "[http]\nlisten = \"127.0.0.1:0\"\ntoken_labels = true\n\
         [tokens.alice]\ntoken_env = \"M_TOKEN\"\n[tokens.bob]\ntoken = \"xoxp-revoked-secret-9999\"\n",
    );
    std::fs::set_permissions(
        &setup.cfg,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut child = setup.spawn("daemon.log", &[("M_TOKEN", TOKEN)]);
    let addr = served_on(&setup.path("daemon.log"), 1).await;
    setup.wait_started("daemon.log").await;
    setup.set(&["--token", "alice", "--text", "Coffee"]);
    setup.set(&["--token", "bob", "--text", "Tea"]);
    let text = scrape_until(
        addr,
        &[
            "slack_statusd_requests_total{method=\"users.profile.set\",outcome=\"ok\",token=\"alice\"} 1",
            "slack_statusd_requests_total{method=\"users.profile.set\",outcome=\"token_error\",token=\"bob\"} 1",
            "slack_statusd_token_held{token=\"bob\"} 1",
            "slack_statusd_tokens{state=\"ok\"} 1",
            "slack_statusd_tokens{state=\"held\"} 1",
            "slack_statusd_updates{state=\"failed\"} 1",
        ],
    )
    .await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("slack_statusd_throttle_wait_seconds_total{token=\"alice\"}")),
        "{text}"
    );
    for secret in [TOKEN, dead, "xoxp-"] {
        assert!(!text.contains(secret), "{secret} in:\n{text}");
    }
    common::stop(&mut child).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_that_cannot_be_bound_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[]).await;
    let setup = Setup::new(&slack, &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    let mut child = setup.spawn("daemon.log", &[]);
    assert_eq!(
        common::wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(2)
    );
    let log = std::fs::read_to_string(setup.path("daemon.log")).unwrap();
    assert!(
        log.contains(&format!(
            "[http] listen 127.0.0.1:{port}: cannot listen there"
        )),
        "{log}"
    );
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_or_stops_the_server_and_keeps_it_when_the_new_listen_fails() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[]).await;
    let http = |listen: &str| format!("[http]\nlisten = \"{listen}\"\n");
    let setup = Setup::new(&slack, &http("127.0.0.1:0"));
    let log = setup.path("daemon.log");
    let mut child = setup.spawn("daemon.log", &[]);
    let first = served_on(&log, 1).await;
    setup.wait_started("daemon.log").await;

    // A port in use: the old server stays, the error is logged, and /readyz is unchanged.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    setup.write_config(&setup.config_text(&slack, &http(&format!("127.0.0.1:{port}"))));
    let needle =
        format!("[http] listen 127.0.0.1:{port}: cannot listen there; the server on {first} stays");
    wait_for("the bind error", Duration::from_secs(10), || {
        common::log_has(&log, &needle)
    })
    .await;
    wait_for("the reload", Duration::from_secs(10), || {
        common::log_has(&log, "reloaded")
    })
    .await;
    assert_eq!(get(first, "/readyz").await.unwrap().0, 200);
    let text = get(first, "/metrics").await.unwrap().1;
    assert!(
        text.contains("slack_statusd_reloads_total{outcome=\"ok\"} 1"),
        "{text}"
    );
    drop(taken);

    // Another free port: the server moves.
    setup.write_config(&setup.config_text(&slack, &http("127.0.0.2:0")));
    let second = served_on(&log, 2).await;
    assert_ne!(first, second);
    assert_eq!(get(second, "/healthz").await.unwrap().0, 200);
    wait_until(
        "the old server to stop",
        Duration::from_secs(10),
        || async { get(first, "/healthz").await.is_err() },
    )
    .await;

    // No listen: the server stops.
    setup.write_config(&setup.config_text(&slack, ""));
    wait_until("the server to stop", Duration::from_secs(10), || async {
        get(second, "/healthz").await.is_err()
    })
    .await;
    // The line is written once the server has stopped, so a client may see the port
    // closed a moment before the log says so.
    wait_for("the removal in the log", Duration::from_secs(10), || {
        common::log_has(&log, "[http] listen removed")
    })
    .await;
    common::stop(&mut child).await;
}

/// Check the exposition strictly (the Prometheus text format, as `promtool check metrics`
/// reads it): every sample line is `name{labels} value` with a known family declared by a
/// `# TYPE` before its samples, label values quoted and escaped, values numbers; the text
/// ends with a newline (OpenMetrics' `# EOF` aside). Returns each sample's value by its
/// `name{labels}`.
fn parse_strict(text: &str) -> std::collections::BTreeMap<String, f64> {
    use std::collections::{BTreeMap, BTreeSet};
    assert!(text.ends_with('\n'), "ends with a newline");
    let name_ok = |n: &str| {
        let mut c = n.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed: BTreeSet<String> = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(name_ok(name), "family name {name:?}");
            assert!(
                [
                    "counter",
                    "gauge",
                    "histogram",
                    "summary",
                    "info",
                    "unknown"
                ]
                .contains(&kind),
                "{line}"
            );
            assert!(typed.insert(name.to_string()), "{name} declared twice");
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "metric name {name:?} in {line:?}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                let inner = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("labels in braces: {line:?}"));
                // name="value" pairs; a value's quotes and backslashes escaped.
                let mut rest = inner;
                while !rest.is_empty() {
                    let (label, after) = rest.split_once("=\"").expect("label=\"");
                    assert!(name_ok(label), "label {label:?} in {line:?}");
                    let mut end = None;
                    let mut escaped = false;
                    for (i, c) in after.char_indices() {
                        match (escaped, c) {
                            (true, _) => escaped = false,
                            (false, '\\') => escaped = true,
                            (false, '"') => {
                                end = Some(i);
                                break;
                            }
                            _ => {}
                        }
                    }
                    let end = end.unwrap_or_else(|| panic!("unterminated value in {line:?}"));
                    rest = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
            }
        }
        let family = ["_bucket", "_sum", "_count", "_total", "_created", "_info"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "{name}: no # TYPE before it");
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("value {v:?} in {line:?}")),
        };
        samples.insert(series.to_string(), v);
    }
    samples
}

/// The metrics agree with what really happened: requests per outcome with what the fake
/// Slack received, rows per state with `queue --json`, and the firing-delay histogram's
/// count with the requests started (the `sends` log, reads aside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_agree_with_the_fake_the_queue_and_the_request_log() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let setup = Setup::new(
        &slack,
        "[http]\nlisten = \"127.0.0.1:0\"\n[retry]\ninitial_backoff = \"50ms\"\n\
         max_backoff = \"100ms\"\n[tokens.alice]\ntoken_env = \"M_TOKEN\"\n",
    );
    // One transient failure (retried), then a permanent one; the rest answer normally.
    slack.script(
        TOKEN,
        vec![
            common::Scripted::Reply(200, None, r#"{"ok":false,"error":"internal_error"}"#.into()),
            common::Scripted::Normal,
            common::Scripted::Reply(
                200,
                None,
                r#"{"ok":false,"error":"invalid_profile"}"#.into(),
            ),
        ],
    );
    let mut child = setup.spawn("daemon.log", &[("M_TOKEN", TOKEN)]);
    let addr = served_on(&setup.path("daemon.log"), 1).await;
    setup.wait_started("daemon.log").await;
    setup.set(&["--token", "alice", "--text", "One"]);
    wait_for("the retried send", Duration::from_secs(10), || {
        slack.received().len() == 2
    })
    .await;
    setup.set(&["--token", "alice", "--text", "Two"]);
    wait_for("the failed send", Duration::from_secs(10), || {
        slack.received().len() == 3
    })
    .await;
    setup.set(&[
        "--token", "alice", "--text", "Three", "--expire", "1h", "--dnd",
    ]);
    wait_for("the send and its snooze", Duration::from_secs(10), || {
        slack.received().len() == 5
    })
    .await;
    let text = scrape_until(
        addr,
        &["slack_statusd_requests_total{method=\"dnd.setSnooze\",outcome=\"ok\"} 1"],
    )
    .await;
    let m = parse_strict(&text);
    let requests = |method: &str, outcome: &str| {
        m.get(&format!(
            "slack_statusd_requests_total{{method=\"{method}\",outcome=\"{outcome}\"}}"
        ))
        .copied()
        .unwrap_or(0.0)
    };
    let received = slack.received();
    let of = |method: &str| received.iter().filter(|r| r.method == method).count() as f64;
    assert_eq!(of("users.profile.set"), 4.0);
    assert_eq!(requests("users.profile.set", "ok"), 2.0, "{text}");
    assert_eq!(requests("users.profile.set", "transient"), 1.0, "{text}");
    assert_eq!(requests("users.profile.set", "permanent"), 1.0, "{text}");
    assert_eq!(requests("dnd.setSnooze", "ok"), of("dnd.setSnooze"));

    let out = setup.cli(&["queue", "--json"]);
    let mut per_state: std::collections::BTreeMap<String, f64> = Default::default();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        *per_state
            .entry(row["state"].as_str().unwrap().to_string())
            .or_default() += 1.0;
    }
    for (state, n) in &per_state {
        let shown = m[&format!("slack_statusd_updates{{state=\"{state}\"}}")];
        assert_eq!(shown, *n, "{state}: {text}");
    }

    let q = slack_statusd::queue::Queue::open(&setup.db(), false)
        .await
        .unwrap();
    let started = q
        .sends_since("alice", chrono::DateTime::UNIX_EPOCH)
        .await
        .unwrap()
        .iter()
        .filter(|(method, _, _)| method != "users.profile.get")
        .count() as f64;
    q.close().await;
    assert_eq!(started, 5.0, "four sets and a snooze were started");
    assert_eq!(
        m["slack_statusd_firing_delay_seconds_count"], started,
        "{text}"
    );
    common::stop(&mut child).await;
}

/// `/readyz` is 200 once READY=1 is sent and 503 from the moment the daemon starts stopping
/// (here while a slow request drains), until the server goes with the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_the_daemon_stops() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    slack.set_response_delay(Duration::from_millis(2500));
    let setup = Setup::new(
        &slack,
        "[http]\nlisten = \"127.0.0.1:0\"\n[tokens.alice]\ntoken_env = \"M_TOKEN\"\n",
    );
    let mut child = setup.spawn("daemon.log", &[("M_TOKEN", TOKEN)]);
    let addr = served_on(&setup.path("daemon.log"), 1).await;
    setup.wait_started("daemon.log").await;
    wait_until("/readyz 200", Duration::from_secs(10), || async {
        get(addr, "/readyz").await.ok().filter(|(s, _)| *s == 200)
    })
    .await;
    setup.set(&["--token", "alice", "--text", "Slow"]);
    // The request has reached the fake, whose answer is 2.5 s away: the daemon drains it.
    wait_for("the request in flight", Duration::from_secs(10), || {
        !slack.received().is_empty()
    })
    .await;
    common::signal(&child, "TERM");
    let status = wait_until(
        "/readyz 503 while stopping",
        Duration::from_secs(5),
        || async {
            match get(addr, "/readyz").await {
                Ok((503, _)) => Some(503),
                Ok(_) => None,
                // Gone before we saw it stopping: report that, do not wait on.
                Err(_) => Some(0),
            }
        },
    )
    .await;
    assert_eq!(status, 503, "not 200 while stopping, and still answering");
    assert_eq!(
        common::wait_exit(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
}
