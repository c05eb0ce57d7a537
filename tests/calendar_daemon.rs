//! Calendars end to end (issue 12): the real binary, the fake Slack and a local HTTP server
//! serving a feed with an ETag. Events are placed a few seconds ahead of the test's start;
//! waits are for conditions, with deadlines.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, TimeDelta, Utc};
use common::{wait_for, wait_until, FakeSlack, Setup};
use slack_statusd::queue::{Queue, State, CALENDAR_CHANGED};

/// The part of the feed's address that is secret.
const SECRET: &str = "s3cr3tpath";
/// A private event's title: it must reach no log, row, request or file.
const PRIVATE: &str = "Quibblesworth";

/// What the feed server serves, and what it saw.
#[derive(Default)]
struct Feed {
    body: String,
    /// Answer 500 instead.
    fail: bool,
    /// `If-None-Match` of every request, in order.
    seen: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Feed>>;

/// The ETag of a body: its length and a cheap checksum, so an edit changes it.
fn etag(body: &str) -> String {
    let sum = body
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64));
    format!("\"{}-{sum:x}\"", body.len())
}

async fn serve(feed: Shared) -> SocketAddr {
    async fn handle(AxumState(feed): AxumState<Shared>, headers: HeaderMap) -> Response {
        let mut f = feed.lock().unwrap();
        let inm = headers
            .get("if-none-match")
            .map(|v| v.to_str().unwrap().to_string());
        f.seen.push(inm.clone());
        if f.fail {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        let tag = etag(&f.body);
        if inm.as_deref() == Some(tag.as_str()) {
            return (StatusCode::NOT_MODIFIED, [("etag", tag)]).into_response();
        }
        (
            [("content-type", "text/calendar".to_string()), ("etag", tag)],
            f.body.clone(),
        )
            .into_response()
    }
    let app = Router::new().fallback(handle).with_state(feed);
    common::serve_router(app).await
}

fn ics_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// One VEVENT from `start` for `len` seconds, with extra property lines.
fn event(uid: &str, summary: &str, start: DateTime<Utc>, len: i64, extra: &str) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:{}\r\nDTEND:{}\r\n\
         SUMMARY:{summary}\r\n{extra}END:VEVENT\r\n",
        ics_time(start),
        ics_time(start + TimeDelta::seconds(len))
    )
}

fn calendar(events: &[String]) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{}END:VCALENDAR\r\n",
        events.concat()
    )
}

/// The feed at `b` (the first event's start): a cancelled and a declined event at the same
/// start as "Planning" and before it in the feed (so either would win if it were not
/// ignored), a private event, and "Retro" with `retro` as its title, later on.
fn feed_at(b: DateTime<Utc>, retro: &str) -> String {
    let s = TimeDelta::seconds;
    calendar(&[
        event("c1", "Cancelled sync", b, 4, "STATUS:CANCELLED\r\n"),
        event(
            "d1",
            "Declined review",
            b,
            4,
            "ATTENDEE;PARTSTAT=DECLINED:mailto:Alice@Example.com\r\n",
        ),
        event("p1", "Planning", b, 4, ""),
        event("x1", PRIVATE, b + s(5), 3, "CLASS:PRIVATE\r\n"),
        event("r1", retro, b + s(60), 30, ""),
    ])
}

fn config_body(addr: SocketAddr) -> String {
    format!(
        "timezone = \"UTC\"\n[tokens.alice]\ntoken_env = \"CAL_TOKEN\"\n\
         [[calendars]]\nname = \"work\"\ntoken = \"alice\"\n\
         url = \"http://{addr}/cal/{SECRET}/basic.ics\"\npoll = \"10m\"\n\
         email = [\"alice@example.com\"]\n\
         [[calendars.map]]\nbusy = [\"busy\"]\nstatus_text = \"{{summary}}\"\n\
         status_emoji = \":spiral_calendar_pad:\"\n"
    )
}

/// Every byte of the database's files (the WAL included).
fn database_bytes(setup: &Setup) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = setup.db().into_os_string();
        p.push(suffix);
        if let Ok(b) = std::fs::read(&p) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_sets_and_supersedes_statuses_on_time_and_keeps_its_secrets() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-alice"]).await;
    let b = DateTime::from_timestamp(Utc::now().timestamp() + 5, 0).unwrap();
    let feed: Shared = Arc::default();
    feed.lock().unwrap().body = feed_at(b, "Retro");
    let addr = serve(feed.clone()).await;
    let setup = Setup::new(&slack, &config_body(addr));
    let envs = [("CAL_TOKEN", "xoxp-alice")];
    let mut child = setup.spawn("daemon.log", &envs);

    // "Planning" goes out at its start, with its end as the expiry; neither the cancelled
    // nor the declined event (first in the feed at the same start) is ever shown.
    wait_for("Planning sent", Duration::from_secs(15), || {
        !slack.received().is_empty()
    })
    .await;
    let first = slack.received()[0].clone();
    assert!(
        Utc::now() >= b - TimeDelta::milliseconds(500),
        "not before its start"
    );
    assert_eq!(first.profile["status_text"], "Planning");
    assert_eq!(first.profile["status_emoji"], ":spiral_calendar_pad:");
    assert_eq!(first.profile["status_expiration"], b.timestamp() + 4);

    // The second fetch (a reload starts the calendar again) is conditional: a 304.
    common::signal(&child, "HUP");
    wait_for("a conditional fetch", Duration::from_secs(10), || {
        feed.lock().unwrap().seen.len() >= 2
    })
    .await;
    let first_tag = etag(&feed.lock().unwrap().body);
    assert_eq!(
        feed.lock().unwrap().seen[0],
        None,
        "the first fetch is plain"
    );
    assert_eq!(
        feed.lock().unwrap().seen[1].as_deref(),
        Some(first_tag.as_str())
    );

    // A server answering 500: a warning naming the host only; the copy stays in use, and
    // the private event still shows, as "Busy".
    feed.lock().unwrap().fail = true;
    common::signal(&child, "HUP");
    let log = setup.path("daemon.log");
    wait_for("the failed fetch logged", Duration::from_secs(10), || {
        common::log_has(&log, "the last good copy stays in use")
    })
    .await;
    wait_for("the private event shown", Duration::from_secs(15), || {
        slack
            .received()
            .iter()
            .any(|r| r.profile["status_text"] == "Busy")
    })
    .await;
    let busy = slack
        .received()
        .into_iter()
        .find(|r| r.profile["status_text"] == "Busy")
        .unwrap();
    assert_eq!(busy.profile["status_expiration"], b.timestamp() + 8);

    // An edit before Retro's start supersedes its row and queues the new title.
    {
        let mut f = feed.lock().unwrap();
        f.fail = false;
        f.body = feed_at(b, "Retro moved");
    }
    common::signal(&child, "HUP");
    let db = setup.db();
    let rows = wait_until("Retro superseded", Duration::from_secs(10), || async {
        let rows = common::rows(&db).await;
        let texts = |state: State| -> Vec<String> {
            rows.iter()
                .filter(|r| r.state == state)
                .filter_map(|r| r.patch.status.as_ref().map(|s| s.text.clone()))
                .collect()
        };
        let done =
            texts(State::Superseded) == ["Retro"] && texts(State::Pending) == ["Retro moved"];
        if done {
            Ok(rows)
        } else {
            let seen: Vec<_> = rows
                .iter()
                .map(|r| (r.state, r.patch.status.clone()))
                .collect();
            Err(format!("{seen:?}"))
        }
    })
    .await;
    let old = rows.iter().find(|r| r.state == State::Superseded).unwrap();
    assert_eq!(old.last_error.as_deref(), Some(CALENDAR_CHANGED));
    common::stop(&mut child).await;

    // Never sent: the cancelled and the declined event. Nowhere: the private title and the
    // secret part of the address.
    for r in slack.received() {
        let text = r.profile["status_text"].as_str().unwrap_or("").to_string();
        assert!(
            !text.contains("Cancelled") && !text.contains("Declined"),
            "{text}"
        );
        assert!(!r.profile.to_string().contains(PRIVATE));
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains(PRIVATE), "{log_text}");
    assert!(!log_text.contains(SECRET), "{log_text}");
    assert!(
        log_text.contains("host=http://127.0.0.1 "),
        "the host is named: {log_text}"
    );
    // `status` says when the feed last answered (the last fetch, a 304, counts).
    let out = setup.cli(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["calendars"][0]["calendar"], "work", "{status}");
    assert!(status["calendars"][0]["last_fetch"].is_string(), "{status}");
    let bytes = database_bytes(&setup);
    assert!(
        !contains(&bytes, PRIVATE),
        "the private title is in the database"
    );
    assert!(
        !contains(&bytes, SECRET),
        "the secret address is in the database"
    );
    assert!(
        !contains(&bytes, "BEGIN:VEVENT"),
        "the raw feed is in the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_the_server_down_still_applies_the_running_event() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-alice"]).await;
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let feed: Shared = Arc::default();
    // An all-morning event that began an hour ago: applied at once, whatever catch_up says.
    feed.lock().unwrap().body = calendar(&[event(
        "m1",
        "Offsite",
        now - TimeDelta::hours(1),
        3 * 3600,
        "",
    )]);
    let addr = serve(feed.clone()).await;
    let setup = Setup::new(&slack, &format!("catch_up = \"0s\"\n{}", config_body(addr)));
    let envs = [("CAL_TOKEN", "xoxp-alice")];

    let mut child = setup.spawn("first.log", &envs);
    wait_for("the running event applied", Duration::from_secs(15), || {
        slack.received().len() == 1
    })
    .await;
    common::stop(&mut child).await;
    assert_eq!(slack.received()[0].profile["status_text"], "Offsite");

    // Someone clears the status and the rows are forgotten (as after `retention`): only the
    // stored copy knows the event now, and the server is down.
    slack.set_by_hand(
        "xoxp-alice",
        "",
        serde_json::json!({"status_text": "", "status_emoji": ""}),
    );
    {
        let q = Queue::open(&setup.db(), false).await.unwrap();
        q.purge(Utc::now() + TimeDelta::days(1), Utc::now())
            .await
            .unwrap();
        q.close().await;
    }
    feed.lock().unwrap().fail = true;
    let mut child = setup.spawn("second.log", &envs);
    wait_for(
        "the running event applied from the copy",
        Duration::from_secs(15),
        || slack.received().len() == 2,
    )
    .await;
    common::stop(&mut child).await;
    let again = &slack.received()[1];
    assert_eq!(again.profile["status_text"], "Offsite");
    assert_eq!(
        again.profile["status_expiration"],
        now.timestamp() + 2 * 3600
    );
    assert!(common::log_has(
        &setup.path("second.log"),
        "the last good copy stays in use"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_feed_is_followed_and_an_event_deleted_while_shown_ends_at_once() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-alice"]).await;
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let running = event("w1", "Workshop", now - TimeDelta::minutes(10), 3600, "");
    let setup = Setup::new(
        &slack,
        "timezone = \"UTC\"\n[tokens.alice]\ntoken_env = \"CAL_TOKEN\"\n\
         [[calendars]]\nname = \"local\"\ntoken = \"alice\"\nurl = \"work.ics\"\n\
         [[calendars.map]]\nstatus_text = \"{summary}\"\n",
    );
    common::replace_file(&setup.path("work.ics"), &calendar(&[running]));
    let mut child = setup.spawn("daemon.log", &[("CAL_TOKEN", "xoxp-alice")]);
    wait_for("the running event shown", Duration::from_secs(15), || {
        slack.received().len() == 1
    })
    .await;
    assert_eq!(slack.received()[0].profile["status_text"], "Workshop");

    // The event is deleted from the file: no need to wait for `poll` (5 minutes), and the
    // status goes at once instead of at its expiry.
    common::replace_file(&setup.path("work.ics"), &calendar(&[]));
    wait_for("the status ended", Duration::from_secs(15), || {
        slack.received().len() == 2
    })
    .await;
    let cleared = &slack.received()[1].profile;
    assert_eq!(cleared["status_text"], "", "{cleared}");
    assert_eq!(cleared["status_emoji"], "", "{cleared}");

    // The next edit queues its new event and nothing else: a cleared status is not ended
    // again.
    let later = event("n1", "Later", now + TimeDelta::hours(5), 600, "");
    common::replace_file(&setup.path("work.ics"), &calendar(&[later]));
    let log = setup.path("daemon.log");
    let queued = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("calendar changes queued"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    wait_for("the edit queued", Duration::from_secs(15), || {
        queued().len() == 3
    })
    .await;
    common::stop(&mut child).await;
    let last = queued().pop().unwrap();
    assert!(
        last.contains("enqueued=1") && last.contains("ended=false"),
        "{last}"
    );
    assert_eq!(slack.received().len(), 2);
}

/// With `restore = true` a calendar's statuses are temporary (SPEC §5, §6): at an event's
/// end the user's own status comes back, and an event deleted while it shows ends at once
/// with its restore, its snooze ended and presence back to auto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_restore_the_users_status_comes_back_at_the_end_and_when_the_event_goes() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-alice"]).await;
    slack.set_by_hand(
        "xoxp-alice",
        "",
        serde_json::json!({"status_text": "Writing", "status_emoji": ":pencil:", "status_expiration": 0}),
    );
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let short = event("s1", "Standup", now - TimeDelta::seconds(1), 4, "");
    let setup = Setup::new(
        &slack,
        "timezone = \"UTC\"\n[tokens.alice]\ntoken_env = \"CAL_TOKEN\"\n\
         [[calendars]]\nname = \"local\"\ntoken = \"alice\"\nurl = \"work.ics\"\nrestore = true\n\
         [[calendars.map]]\nstatus_text = \"{summary}\"\ndnd = true\npresence = \"away\"\n",
    );
    common::replace_file(&setup.path("work.ics"), &calendar(&[short]));
    let mut child = setup.spawn("daemon.log", &[("CAL_TOKEN", "xoxp-alice")]);
    let shown = |slack: &FakeSlack| {
        slack.profile("xoxp-alice", "").unwrap()["status_text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    wait_for(
        "the standup shown, with DND and away",
        Duration::from_secs(15),
        || {
            shown(&slack) == "Standup"
                && slack.snooze("xoxp-alice").is_some()
                && slack.presence("xoxp-alice").as_deref() == Some("away")
        },
    )
    .await;
    wait_for(
        "the status from before, at the end",
        Duration::from_secs(10),
        || shown(&slack) == "Writing" && slack.presence("xoxp-alice").as_deref() == Some("auto"),
    )
    .await;

    let long = event("w1", "Workshop", now, 3600, "");
    common::replace_file(&setup.path("work.ics"), &calendar(&[long]));
    wait_for(
        "the workshop shown, away again",
        Duration::from_secs(15),
        || shown(&slack) == "Workshop" && slack.presence("xoxp-alice").as_deref() == Some("away"),
    )
    .await;
    common::replace_file(&setup.path("work.ics"), &calendar(&[]));
    wait_for(
        "the workshop ended at once",
        Duration::from_secs(15),
        || {
            shown(&slack) == "Writing"
                && slack.snooze("xoxp-alice").is_none()
                && slack.presence("xoxp-alice").as_deref() == Some("auto")
        },
    )
    .await;
    common::stop(&mut child).await;
    let restores = setup.restore_rows().await;
    assert_eq!(restores.len(), 2, "{restores:#?}");
    assert!(
        restores.iter().all(|r| r.state == State::Sent),
        "{restores:#?}"
    );
}
