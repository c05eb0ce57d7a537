//! Downtime: after a stop, the daemon applies per rule only the most recent firing that fell in
//! the gap, once, if it is within `catch_up` and its status has not expired (SPEC §4).
//!
//! The end-to-end test runs the real binary with a rule firing every 2 s; the catch-up and
//! expiry decisions at scales a test cannot wait for (`catch_up = "0s"` against the 60 s
//! on-time grace, hours of catch-up) are the pure `firing_to_apply`, checked as a table.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::{spawn_daemon, wait_for, wait_until, FakeSlack, Setup};
use slack_statusd::config::{load_str, Rule};
use slack_statusd::daemon::scheduler::firing_to_apply;
use slack_statusd::queue::{State, Update};

const TOKEN: &str = "xoxp-downtime";

/// The latest even-second instant at or before `t`: the rule's most recent firing.
fn even_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    let ms = t.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(2000)).unwrap()
}

async fn rows(db: &Path) -> Vec<Update> {
    let mut rows = common::rows(db).await;
    rows.sort_by_key(|r| r.fire_at);
    rows
}

/// Wait, on the wall clock, until `t` has passed.
async fn until_wall_clock(t: DateTime<Utc>) {
    let deadline = (t - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
    wait_for(&format!("the wall clock to pass {t}"), deadline, || {
        Utc::now() >= t
    })
    .await;
}

/// Wait until the database has a row matching `cond`; returns it.
async fn row_where(db: &Path, what: &str, cond: impl Fn(&Update) -> bool) -> Update {
    wait_until(what, Duration::from_secs(10), || async {
        rows(db).await.into_iter().find(|r| cond(r))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_downtime_only_the_latest_missed_firing_is_applied_and_only_once() {
    let slack = FakeSlack::start(100, 100, Duration::from_secs(60), &[TOKEN]).await;
    let setup = Setup::new(
        &slack,
        "timezone = \"UTC\"\n[limits]\nper_user = 100\nper_token = 100\nwindow = \"60s\"\n\
         [tokens.me]\ntoken_env = \"DOWNTIME_TOKEN\"\n\
         [[rules]]\nname = \"tick\"\ntoken = \"me\"\ncron = \"*/2 * * * * *\"\n\
         status_text = \"Tick\"\nstatus_emoji = \":clock2:\"\nexpire_after = \"1h\"\n",
    );
    let (cfg, db, dir) = (&setup.cfg, setup.db(), &setup.dir);
    let envs = [("DOWNTIME_TOKEN", TOKEN)];

    // Run 1: until one firing has been sent.
    let mut child = spawn_daemon(cfg, &dir.path().join("run1.log"), &envs);
    wait_for("the first firing at Slack", Duration::from_secs(10), || {
        slack.received().iter().any(|r| r.status == 200)
    })
    .await;
    common::stop(&mut child).await;
    let stopped = Utc::now();
    let before = rows(&db).await;
    let last_before = before.last().expect("run 1 enqueued a firing").fire_at;

    // Downtime of at least 5 s, ending 0.2 s into a 2 s period, so that the daemon's first
    // tick comes before the next on-time firing even when start-up is slow (a loaded CI
    // machine running every test binary at once took more than 0.8 s).
    let ms = (stopped + chrono::TimeDelta::seconds(5)).timestamp_millis();
    let restart_at =
        DateTime::from_timestamp_millis(ms + (200 - ms.rem_euclid(2000)).rem_euclid(2000)).unwrap();
    until_wall_clock(restart_at).await;

    // Run 2: the catch-up.
    let spawned = Utc::now();
    let mut child = spawn_daemon(cfg, &dir.path().join("run2.log"), &envs);
    let catch_up = row_where(&db, "the catch-up row sent", |r| {
        r.fire_at > last_before && r.state == State::Sent
    })
    .await;
    common::stop(&mut child).await;
    let expected = even_floor(catch_up.created_at);
    assert_eq!(
        catch_up.fire_at, expected,
        "the catch-up is the most recent firing before it was enqueued (restart at {spawned})"
    );
    assert!(
        catch_up.fire_at <= spawned,
        "the first tick came before the next on-time firing (restart at {spawned}, row {catch_up:?})"
    );
    // The gap held the applied firing and at least one older one, which is not applied.
    let skipped = (catch_up.fire_at - last_before).num_seconds() / 2 - 1;
    assert!(
        skipped >= 1,
        "the gap held only the applied firing (last before the stop {last_before}, catch-up {})",
        catch_up.fire_at
    );

    // Run 3, straight after: nothing from the first gap again. It runs until one of its own
    // on-time firings is sent, so its first tick (the one that would re-apply) is long past.
    let spawned3 = Utc::now();
    let mut child = spawn_daemon(cfg, &dir.path().join("run3.log"), &envs);
    row_where(&db, "an on-time firing of run 3 sent", |r| {
        // Due after the start: on time, not a catch-up (it may have been enqueued ahead).
        r.fire_at > spawned3 && r.state == State::Sent
    })
    .await;
    common::stop(&mut child).await;
    let stopped3 = Utc::now();

    let all = rows(&db).await;
    let in_gap: Vec<&Update> = all
        .iter()
        .filter(|r| r.fire_at > last_before && r.fire_at <= catch_up.fire_at)
        .collect();
    assert_eq!(
        in_gap.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![catch_up.id],
        "one row for the whole gap: {in_gap:?}"
    );
    let mut fire_ats: Vec<_> = all.iter().map(|r| r.fire_at).collect();
    fire_ats.dedup();
    assert_eq!(fire_ats.len(), all.len(), "no firing enqueued twice");
    let ahead = chrono::TimeDelta::from_std(slack_statusd::daemon::AHEAD).unwrap();
    for r in &all {
        assert_eq!(r.fire_at, even_floor(r.fire_at), "every row is a firing");
        // A stop leaves the firing it had enqueued ahead of its instant waiting.
        let waiting_ahead = r.state == State::Pending && r.fire_at + ahead > stopped3;
        assert!(
            matches!(r.state, State::Sent | State::Superseded) || waiting_ahead,
            "row {} ended {}",
            r.id,
            r.state
        );
    }

    // At Slack: the catch-up went out exactly once, with its expiry measured from its firing.
    let expiry = catch_up.fire_at.timestamp() + 3600;
    let sent: Vec<_> = slack
        .received()
        .into_iter()
        .filter(|r| r.status == 200 && r.profile["status_expiration"] == expiry)
        .collect();
    assert_eq!(sent.len(), 1, "the catch-up was sent once");
    assert_eq!(sent[0].profile["status_text"], "Tick");
}

/// A rule firing hourly at :00 in UTC, with the given expiry line(s).
fn hourly(expiry: &str) -> Rule {
    let text = format!(
        "timezone = \"UTC\"\n[tokens.t]\ntoken_env = \"UNUSED\"\n\
         [[rules]]\nname = \"hourly\"\ntoken = \"t\"\ncron = \"0 * * * *\"\n\
         status_text = \"Hourly\"\nstatus_emoji = \":clock1:\"\n{expiry}\n"
    );
    let config = load_str(Path::new("downtime.toml"), &text).unwrap();
    config.rules[0].clone()
}

/// (what, expiry line, mark, now, catch_up, the firing applied).
type Case = (
    &'static str,
    &'static str,
    DateTime<Utc>,
    DateTime<Utc>,
    Duration,
    Option<DateTime<Utc>>,
);

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, h, m, s).unwrap()
}

/// A firing queued ahead (the scheduler commits each one `AHEAD` of its instant) whose
/// instant passed while the daemon was down is decided again by the catch-up rule before any
/// worker may claim it: two minutes late with `catch_up = "0s"`, it is superseded as missed
/// and never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_queued_ahead_and_missed_by_the_downtime_is_decided_before_any_worker_sends_it() {
    use slack_statusd::daemon::scheduler::{fingerprint, patch_for};
    use slack_statusd::queue::{Advance, NewUpdate, Queue, Target};
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &[TOKEN]).await;
    let now = Utc::now();
    let minute = now.timestamp() - 120;
    let fired = DateTime::from_timestamp(minute - minute.rem_euclid(60), 0).unwrap();
    let body = format!(
        "timezone = \"UTC\"\ncatch_up = \"0s\"\n[tokens.me]\ntoken_env = \"DOWNTIME_TOKEN\"\n\
         [[rules]]\nname = \"daily\"\ntoken = \"me\"\nat = \"{}\"\nstatus_text = \"Late\"\n",
        fired.format("%H:%M")
    );
    let setup = Setup::new(&slack, &body);
    let config = load_str(&setup.cfg, &std::fs::read_to_string(&setup.cfg).unwrap()).unwrap();
    let rule = &config.rules[0];
    // What the stopped daemon left: the firing committed ahead, its mark at its instant.
    let q = Queue::open(&setup.db(), true).await.unwrap();
    let firing = NewUpdate {
        rule: Some(rule.name.clone()),
        target: Target {
            token: "me".into(),
            user: None,
        },
        fire_at: fired,
        patch: patch_for(rule, fired),
        respect_manual: false,
        restore: false,
    };
    let advance = Advance {
        rule: rule.name.clone(),
        until: fired,
        fingerprint: Some(fingerprint(rule)),
        firing: Some(firing),
    };
    let ahead = fired - chrono::TimeDelta::seconds(2);
    let id = q.advance_rules(&[advance], ahead).await.unwrap()[0].unwrap();
    q.close().await;

    let mut child = setup.spawn("daemon.log", &[("DOWNTIME_TOKEN", TOKEN)]);
    let row = row_where(&setup.db(), "the queued firing decided", |r| {
        r.id == id && r.state != State::Pending
    })
    .await;
    setup.wait_started("daemon.log").await;
    common::stop(&mut child).await;
    assert_eq!(
        (row.state, row.last_error.as_deref()),
        (State::Superseded, Some("missed")),
        "{row:?}"
    );
    assert!(
        slack.received().is_empty(),
        "nothing sent: {:?}",
        slack.received().len()
    );
}

#[test]
fn firing_to_apply_decides_catch_up_and_expiry() {
    let hours = |h: u64| Duration::from_secs(h * 3600);
    let mins = |m: u64| Duration::from_secs(m * 60);
    let two_hours = "expire_after = \"2h\"";
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        // (what, expiry, mark, now, catch_up, applied firing)
        ("within catch_up: applied", two_hours, at(7, 0, 30), at(10, 30, 0), hours(6), Some(at(10, 0, 0))),
        ("only the most recent of several missed", two_hours, at(7, 0, 30), at(9, 59, 59), hours(6), Some(at(9, 0, 0))),
        ("older than catch_up: not applied", two_hours, at(7, 0, 30), at(10, 30, 0), mins(20), None),
        ("just within catch_up", two_hours, at(7, 0, 30), at(10, 30, 0), mins(31), Some(at(10, 0, 0))),
        ("status expired: not applied", "expire_after = \"20m\"", at(7, 0, 30), at(10, 30, 0), hours(6), None),
        ("expires exactly now: not applied", "expire_after = \"30m\"", at(7, 0, 30), at(10, 30, 0), hours(6), None),
        ("not yet expired: applied", "expire_after = \"20m\"", at(7, 0, 30), at(10, 15, 0), hours(6), Some(at(10, 0, 0))),
        ("expire_at passed: not applied", "expire_at = \"10:15\"", at(7, 0, 30), at(10, 30, 0), hours(6), None),
        ("expire_at ahead: applied", "expire_at = \"10:15\"", at(7, 0, 30), at(10, 10, 0), hours(6), Some(at(10, 0, 0))),
        ("no expiry, hours late: applied", "", at(5, 0, 30), at(10, 59, 0), hours(6), Some(at(10, 0, 0))),
        ("catch_up 0, 30 s late: on time", two_hours, at(9, 30, 0), at(10, 0, 30), Duration::ZERO, Some(at(10, 0, 0))),
        ("catch_up 0, at the instant", two_hours, at(9, 59, 59), at(10, 0, 0), Duration::ZERO, Some(at(10, 0, 0))),
        ("catch_up 0, 2 min late: not applied", two_hours, at(9, 30, 0), at(10, 2, 0), Duration::ZERO, None),
        ("catch_up 0, an hour late: not applied", two_hours, at(7, 0, 30), at(10, 59, 0), Duration::ZERO, None),
        ("already scheduled: never twice", two_hours, at(10, 0, 0), at(10, 30, 0), hours(6), None),
        ("nothing fell in the gap", two_hours, at(10, 0, 1), at(10, 59, 59), hours(6), None),
    ];
    let mut failures = Vec::new();
    for (what, expiry, mark, now, catch_up, want) in cases {
        let got = firing_to_apply(&hourly(expiry), mark, now, catch_up);
        if got != want {
            failures.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
