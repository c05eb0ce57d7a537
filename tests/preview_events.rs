//! `preview --events` with the real binary (SPEC §5, last paragraph): one calendar served
//! over HTTP by a local server, one read from a local file (Fastmail's export), their
//! occurrences merged earliest first with `map` and `ignored`, `--count` and `--from`, a
//! private event's title nowhere, and a fetch failure an error naming calendar and host.

mod common;
mod preview_feed;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;

use serde_json::Value;

use preview_feed::{
    assert_nothing_secret, json_lines, run, serve_feed, stderr, stdout, FROM, SECRET,
};

/// A config folder with the calendar `work` at `work_path` on the server and the calendar
/// `local` read from `local.ics` (a copy of Fastmail's export) beside the config.
fn config(addr: SocketAddr, work_path: &str) -> (tempfile::TempDir, String) {
    let text = format!(
        r#"timezone = "Europe/Berlin"
[tokens.alice]
token_env = "SLACK_TOKEN_ALICE"

[[calendars]]
name = "work"
token = "alice"
url = "http://{addr}{work_path}?key={SECRET}"
email = ["Alice@Example.com"]
horizon = "7d"

[[calendars.map]]
busy = ["oof"]
all_day = true
status_text = "Out of office"

[[calendars.map]]
summary = "(?i)standup"
status_text = "{{summary}}"

[[calendars.map]]
summary = "^Busy$"
status_text = "Busy"

[[calendars.map]]
busy = ["busy"]
status_text = "{{summary}}"

[[calendars]]
name = "local"
token = "alice"
url = "local.ics"
horizon = "7d"

[[calendars.map]]
summary = "(?i)climb"
status_text = "Climbing"
"#
    );
    let (dir, path) = common::config_folder(&text, &[]);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/calendars/fastmail.ics"),
        dir.path().join("local.ics"),
    )
    .unwrap();
    (dir, path.to_string_lossy().into_owned())
}

/// (calendar, uid, start, end, all_day, busy, summary, map, ignored) of a JSON line.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static str,
    Option<&'static str>,
    Option<u64>,
    Option<&'static str>,
);

fn row_json(r: &Row) -> Value {
    let &(calendar, uid, start, end, all_day, busy, summary, map, ignored) = r;
    serde_json::json!({
        "calendar": calendar, "uid": uid, "start": start, "end": end, "all_day": all_day,
        "busy": busy, "summary": summary, "map": map, "ignored": ignored,
    })
}

const STANDUP: &str = "standup-1@google.com";
const CLIMBING: &str = "e5c8a0f2-3b1d-4c6e-9a7f-0d2b4e6f8a1c";

/// Every occurrence of both calendars from Monday 7 Dec over the 7-day horizon, hand-checked
/// against the two feeds.
#[rustfmt::skip]
const WEEK: &[Row] = &[
    ("work", STANDUP, "2026-12-07T09:30:00+01:00", "2026-12-07T09:45:00+01:00", false, "busy", Some("Team standup"), Some(1), None),
    // Free (TRANSP:TRANSPARENT): no entry matches.
    ("work", "lunch-1@google.com", "2026-12-07T12:00:00+01:00", "2026-12-07T13:00:00+01:00", false, "free", Some("Lunch"), None, None),
    ("work", STANDUP, "2026-12-08T09:30:00+01:00", "2026-12-08T09:45:00+01:00", false, "busy", Some("Team standup"), Some(1), None),
    // Declined by Alice (her address in another case in `email`): listed, matched, ignored.
    ("work", "budget-1@google.com", "2026-12-08T11:00:00+01:00", "2026-12-08T12:00:00+01:00", false, "busy", Some("Budget review"), Some(3), Some("declined")),
    // Private: no summary, matched as "Busy" by entry 2.
    ("work", "private-1@google.com", "2026-12-08T14:00:00+01:00", "2026-12-08T15:00:00+01:00", false, "busy", None, Some(2), None),
    ("work", STANDUP, "2026-12-09T09:30:00+01:00", "2026-12-09T09:45:00+01:00", false, "busy", Some("Team standup"), Some(1), None),
    ("work", "offsite-1@google.com", "2026-12-09T10:00:00+01:00", "2026-12-09T11:00:00+01:00", false, "busy", Some("Offsite planning"), Some(3), Some("cancelled")),
    // All-day: local midnight to midnight, DTEND exclusive.
    ("work", "vacation-1@google.com", "2026-12-10T00:00:00+01:00", "2026-12-12T00:00:00+01:00", true, "oof", Some("Vacation"), Some(0), None),
    ("work", STANDUP, "2026-12-10T09:30:00+01:00", "2026-12-10T09:45:00+01:00", false, "busy", Some("Team standup"), Some(1), None),
    ("work", STANDUP, "2026-12-11T09:30:00+01:00", "2026-12-11T09:45:00+01:00", false, "busy", Some("Team standup"), Some(1), None),
    // Fastmail's RDATE (Saturday 10:00); the weekly Tuesdays are 1 Dec, 8 Dec (EXDATE) and
    // 15 Dec (past the horizon).
    ("local", CLIMBING, "2026-12-12T10:00:00+01:00", "2026-12-12T10:45:00+01:00", false, "busy", Some("Climbing"), Some(0), None),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_http_and_a_file_are_listed_earliest_first_with_map_and_ignored() {
    let (addr, hits) = serve_feed().await;
    let (_dir, cfg) = config(addr, &format!("/alice/{SECRET}/basic.ics"));
    let o = run(&[
        "--config", &cfg, "preview", "--events", "--json", "--from", FROM, "--count", "100",
    ])
    .await;
    let lines = json_lines(&o);
    let want: Vec<Value> = WEEK.iter().map(row_json).collect();
    assert_eq!(lines, want, "{}", stdout(&o));
    for line in &lines {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["all_day", "busy", "calendar", "end", "ignored", "map", "start", "summary", "uid"],
            "exactly the keys of SPEC §5"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "each calendar is fetched once"
    );
    // The Fastmail export's broken events are warnings naming the calendar; the rest is used.
    let err = stderr(&o);
    assert!(
        err.contains("warning: calendar \"local\": line ")
            && err.contains("no FREQ; the event is skipped"),
        "{err}"
    );
    assert!(
        !err.contains("calendar \"work\": line"),
        "the work feed is clean: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_and_from_choose_the_occurrences() {
    let (addr, _) = serve_feed().await;
    let (_dir, cfg) = config(addr, &format!("/alice/{SECRET}/basic.ics"));
    let o = run(&[
        "--config", &cfg, "preview", "--events", "--json", "--from", FROM, "--count", "3",
    ])
    .await;
    let want: Vec<Value> = WEEK[..3].iter().map(row_json).collect();
    assert_eq!(json_lines(&o), want);

    // From 09:40 on Tuesday: the standup running then overlaps the window and is listed.
    let o = run(&[
        "--config",
        &cfg,
        "preview",
        "--events",
        "--json",
        "--from",
        "2026-12-08T09:40:00+01:00",
        "--count",
        "2",
    ])
    .await;
    let want: Vec<Value> = WEEK[2..4].iter().map(row_json).collect();
    assert_eq!(json_lines(&o), want);

    // From Thursday noon: the horizon (7 days) reaches the next Thursday noon, so the
    // following week's standups up to Thursday are listed and nothing later.
    let o = run(&[
        "--config",
        &cfg,
        "preview",
        "--events",
        "--json",
        "--from",
        "2026-12-10T12:00:00+01:00",
        "--count",
        "100",
    ])
    .await;
    let starts: Vec<String> = json_lines(&o)
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["calendar"].as_str().unwrap(),
                l["start"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        starts,
        [
            "work 2026-12-10T00:00:00+01:00",
            "work 2026-12-11T09:30:00+01:00",
            "local 2026-12-12T10:00:00+01:00",
            "work 2026-12-14T09:30:00+01:00",
            "work 2026-12-15T09:30:00+01:00",
            "local 2026-12-15T18:00:00+01:00",
            "work 2026-12-16T09:30:00+01:00",
            "work 2026-12-17T09:30:00+01:00",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_form_is_one_readable_line_per_occurrence() {
    let (addr, _) = serve_feed().await;
    let (_dir, cfg) = config(addr, &format!("/alice/{SECRET}/basic.ics"));
    let o = run(&[
        "--config", &cfg, "preview", "--events", "--from", FROM, "--count", "100",
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_nothing_secret(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), WEEK.len(), "{out}");
    #[rustfmt::skip]
    let want = [
        (0, "2026-12-07T09:30:00+01:00 .. 2026-12-07T09:45:00+01:00  work  \"Team standup\"  (busy)  map 1  uid standup-1@google.com"),
        (1, "2026-12-07T12:00:00+01:00 .. 2026-12-07T13:00:00+01:00  work  \"Lunch\"  (free)  no map entry matches  uid lunch-1@google.com"),
        (3, "2026-12-08T11:00:00+01:00 .. 2026-12-08T12:00:00+01:00  work  \"Budget review\"  (busy)  ignored: declined  uid budget-1@google.com"),
        (4, "2026-12-08T14:00:00+01:00 .. 2026-12-08T15:00:00+01:00  work  (private)  (busy)  map 2  uid private-1@google.com"),
        (6, "2026-12-09T10:00:00+01:00 .. 2026-12-09T11:00:00+01:00  work  \"Offsite planning\"  (busy)  ignored: cancelled  uid offsite-1@google.com"),
        (7, "2026-12-10T00:00:00+01:00 .. 2026-12-12T00:00:00+01:00  work  \"Vacation\"  (oof, all day)  map 0  uid vacation-1@google.com"),
    ];
    for (i, line) in want {
        assert_eq!(lines[i], line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_fails_is_an_error_naming_the_calendar_and_host_only() {
    let (addr, _) = serve_feed().await;
    let (_dir, cfg) = config(addr, &format!("/gone/{SECRET}/basic.ics"));
    let o = run(&["--config", &cfg, "preview", "--events", "--from", FROM]).await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "a runtime failure: {}",
        stderr(&o)
    );
    assert_nothing_secret(&o);
    assert_eq!(stdout(&o), "", "nothing listed from a half-fetched set");
    let err = stderr(&o);
    assert!(
        err.contains("slack-statusd: calendar \"work\": HTTP 500 from http://127.0.0.1: "),
        "{err}"
    );
    assert!(
        !err.contains(&addr.port().to_string()),
        "host only, not even the port: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_local_feed_is_an_error_naming_the_calendar_and_file() {
    let (addr, _) = serve_feed().await;
    let (dir, cfg) = config(addr, &format!("/alice/{SECRET}/basic.ics"));
    std::fs::remove_file(dir.path().join("local.ics")).unwrap();
    let o = run(&["--config", &cfg, "preview", "--events", "--from", FROM]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("calendar \"local\": cannot read "), "{err}");
    assert!(err.contains("local.ics: no such file"), "{err}");
}
