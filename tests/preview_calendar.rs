//! `preview` with a calendar beside the rules, with the real binary (SPEC §5, `preview`): the
//! feed served over HTTP on 127.0.0.1, its firings merged with the rules' in time order as
//! far as the calendar's horizon, `source`/`calendar`/`uid` on every JSON line, a private
//! event shown as `Busy` and its title nowhere, the event running at `--from` listed at its
//! real start, `--count` cutting the merged list, and a failing feed an error naming the
//! calendar and host.

mod common;
mod preview_feed;

use std::net::SocketAddr;

use serde_json::{json, Value};

use preview_feed::{
    assert_nothing_secret, json_lines, run, serve_feed, stderr, stdout, FROM, SECRET,
};

/// A config with the rule `coffee` (weekdays 09:00, for Alice's user) and the calendar
/// `work` (the feed at `work_path` on the server, for Alice's own token, 7 days ahead).
fn config(addr: SocketAddr, work_path: &str) -> (tempfile::TempDir, String) {
    let text = format!(
        r#"timezone = "Europe/Berlin"
[tokens.alice]
token_env = "SLACK_TOKEN_ALICE"

[[rules]]
name = "coffee"
token = "alice"
user = "U0123ABCD"
at = "09:00"
days = "mon-fri"
status_text = "Coffee"
status_emoji = ":coffee:"
expire_after = "2h"

[[calendars]]
name = "work"
token = "alice"
url = "http://{addr}{work_path}?key={SECRET}"
email = ["alice@example.com"]
horizon = "7d"

[[calendars.map]]
busy = ["oof"]
all_day = true
status_text = "Out of office until {{end:%a %-d %b}}"
status_emoji = ":palm_tree:"

[[calendars.map]]
summary = "(?i)standup"
status_text = "{{summary}}"
status_emoji = ":spiral_calendar_pad:"

[[calendars.map]]
busy = ["busy"]
status_text = "{{summary}}"
"#
    );
    let (dir, path) = common::config_folder(&text, &[]);
    (dir, path.to_string_lossy().into_owned())
}

/// The feed's path on the server.
fn feed_path() -> String {
    format!("/alice/{SECRET}/basic.ics")
}

/// The JSON lines of `preview --json --from {from} --count {count}` on `cfg`, checked for
/// success and for no secret in the output.
async fn preview_json(cfg: &str, from: &str, count: usize) -> Vec<Value> {
    let count = count.to_string();
    let o = run(&[
        "--config", cfg, "preview", "--json", "--from", from, "--count", &count,
    ])
    .await;
    json_lines(&o)
}

/// An instant in Berlin (December: +01:00) as a Unix timestamp, for `status_expiration`.
fn ts(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp()
}

/// A rule line of `coffee` at `at` (09:00 on a weekday), expiring two hours later.
fn coffee(day: &str) -> Value {
    let at = format!("2026-12-{day}T09:00:00+01:00");
    let expires = format!("2026-12-{day}T11:00:00+01:00");
    json!({
        "at": at, "source": "rule", "rule": "coffee", "calendar": null, "uid": null,
        "token": "alice", "user": "U0123ABCD", "expires": expires,
        "profile": {"status_text": "Coffee", "status_emoji": ":coffee:",
                    "status_expiration": ts(&expires)},
        "restore": false, "dnd": null, "presence": null,
    })
}

/// A calendar line of `work`: from `at` to `expires`, showing `text` and `emoji`.
fn work(at: &str, expires: &str, uid: &str, text: &str, emoji: &str) -> Value {
    json!({
        "at": at, "source": "calendar", "rule": null, "calendar": "work", "uid": uid,
        "token": "alice", "user": null, "expires": expires,
        "profile": {"status_text": text, "status_emoji": emoji,
                    "status_expiration": ts(expires)},
        "restore": false, "dnd": null, "presence": null,
    })
}

fn standup(day: &str) -> Value {
    work(
        &format!("2026-12-{day}T09:30:00+01:00"),
        &format!("2026-12-{day}T09:45:00+01:00"),
        "standup-1@google.com",
        "Team standup",
        ":spiral_calendar_pad:",
    )
}

fn vacation() -> Value {
    work(
        "2026-12-10T00:00:00+01:00",
        "2026-12-12T00:00:00+01:00",
        "vacation-1@google.com",
        "Out of office until Fri 11 Dec",
        ":palm_tree:",
    )
}

/// From Monday 7 Dec, hand-checked against the feed: the rule every weekday at 09:00; the
/// standup each day at 09:30 until the vacation (Thu–Fri, all day), which outranks it (map
/// entry 0) so Thursday's and Friday's standups change nothing; the private event as `Busy`
/// (entry 2 renders `{summary}`); the free lunch (no entry), the declined budget review and
/// the cancelled offsite never. The horizon ends Monday 14 Dec 00:00: the 11th line is the
/// rule's next Monday, and no calendar line comes after Friday.
fn week() -> Vec<Value> {
    vec![
        coffee("07"),
        standup("07"),
        coffee("08"),
        standup("08"),
        work(
            "2026-12-08T14:00:00+01:00",
            "2026-12-08T15:00:00+01:00",
            "private-1@google.com",
            "Busy",
            "",
        ),
        coffee("09"),
        standup("09"),
        vacation(),
        coffee("10"),
        coffee("11"),
        coffee("14"),
        coffee("15"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_firings_are_merged_with_the_rules_in_time_order_with_their_keys() {
    let (addr, hits) = serve_feed().await;
    let (_dir, cfg) = config(addr, &feed_path());
    let lines = preview_json(&cfg, FROM, 12).await;
    assert_eq!(lines, week());
    for line in &lines {
        let mut keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "at", "calendar", "dnd", "expires", "presence", "profile", "restore", "rule",
                "source", "token", "uid", "user"
            ],
            "SPEC §2's keys and §5's, on rule and calendar lines alike"
        );
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the calendar is fetched once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_cuts_the_merged_list() {
    let (addr, _) = serve_feed().await;
    let (_dir, cfg) = config(addr, &feed_path());
    for count in [1, 2, 5, 8] {
        assert_eq!(
            preview_json(&cfg, FROM, count).await,
            week()[..count],
            "--count {count}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_running_at_from_is_listed_at_its_real_start() {
    let (addr, _) = serve_feed().await;
    let (_dir, cfg) = config(addr, &feed_path());
    // Thursday 10:00, the vacation running since midnight: it is what the daemon applies at
    // once, so it comes first, before the rule's next firing (Friday 09:00).
    let lines = preview_json(&cfg, "2026-12-10T10:00:00+01:00", 3).await;
    assert_eq!(lines, [vacation(), coffee("11"), coffee("14")]);

    // Tuesday 14:30, inside the private event: listed from 14:00, as `Busy`.
    let lines = preview_json(&cfg, "2026-12-08T14:30:00+01:00", 1).await;
    assert_eq!(lines[0]["at"], "2026-12-08T14:00:00+01:00");
    assert_eq!(lines[0]["profile"]["status_text"], "Busy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_form_says_which_calendar_and_never_the_private_title() {
    let (addr, _) = serve_feed().await;
    let (_dir, cfg) = config(addr, &feed_path());
    let o = run(&["--config", &cfg, "preview", "--from", FROM, "--count", "8"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_nothing_secret(&o);
    #[rustfmt::skip]
    let want = [
        "2026-12-07T09:00:00+01:00  coffee  alice/U0123ABCD  :coffee: Coffee  expires 2026-12-07T11:00:00+01:00",
        "2026-12-07T09:30:00+01:00  calendar work  alice  :spiral_calendar_pad: Team standup  expires 2026-12-07T09:45:00+01:00  uid standup-1@google.com",
        "2026-12-08T09:00:00+01:00  coffee  alice/U0123ABCD  :coffee: Coffee  expires 2026-12-08T11:00:00+01:00",
        "2026-12-08T09:30:00+01:00  calendar work  alice  :spiral_calendar_pad: Team standup  expires 2026-12-08T09:45:00+01:00  uid standup-1@google.com",
        "2026-12-08T14:00:00+01:00  calendar work  alice  Busy  expires 2026-12-08T15:00:00+01:00  uid private-1@google.com",
        "2026-12-09T09:00:00+01:00  coffee  alice/U0123ABCD  :coffee: Coffee  expires 2026-12-09T11:00:00+01:00",
        "2026-12-09T09:30:00+01:00  calendar work  alice  :spiral_calendar_pad: Team standup  expires 2026-12-09T09:45:00+01:00  uid standup-1@google.com",
        "2026-12-10T00:00:00+01:00  calendar work  alice  :palm_tree: Out of office until Fri 11 Dec  expires 2026-12-12T00:00:00+01:00  uid vacation-1@google.com",
    ];
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_fails_is_an_error_naming_the_calendar_and_host_only() {
    let (addr, _) = serve_feed().await;
    let (_dir, cfg) = config(addr, &format!("/gone/{SECRET}/basic.ics"));
    let o = run(&["--config", &cfg, "preview", "--from", FROM]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_nothing_secret(&o);
    assert_eq!(stdout(&o), "", "no rule firings without the calendar's");
    let err = stderr(&o);
    assert!(
        err.contains("slack-statusd: calendar \"work\": HTTP 500 from http://127.0.0.1: "),
        "{err}"
    );
    assert!(!err.contains(&addr.port().to_string()), "host only: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_restore_the_end_of_the_calendars_status_is_a_line_of_its_own() {
    let (addr, _) = serve_feed().await;
    let (dir, cfg) = config(addr, &feed_path());
    let path = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("horizon = \"7d\"\n", "horizon = \"7d\"\nrestore = true\n"),
    )
    .unwrap();
    let lines = preview_json(&cfg, FROM, 3).await;
    let end = json!({
        "at": "2026-12-07T09:45:00+01:00", "source": "calendar", "rule": null,
        "calendar": "work", "uid": "standup-1@google.com", "token": "alice", "user": null,
        "expires": null, "profile": {}, "restore": false, "dnd": null, "presence": null,
    });
    let mut temporary = standup("07");
    temporary["restore"] = json!(true);
    assert_eq!(lines, [coffee("07"), temporary, end]);

    let o = run(&["--config", &cfg, "preview", "--from", FROM, "--count", "3"]).await;
    assert_eq!(
        stdout(&o).lines().nth(2),
        Some(
            "2026-12-07T09:45:00+01:00  calendar work  alice  \
             (calendar status ends: restore the one from before)  uid standup-1@google.com"
        )
    );
}
