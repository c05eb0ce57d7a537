//! Crash safety, end to end: the real binary drains a throttled queue against the fake Slack
//! and is killed with SIGKILL at several moments, each time while a request is on the wire,
//! then restarted. Nothing may be lost, and only a request in flight at a kill may be sent
//! twice. A second test kills a daemon whose rule fires every second: no firing is enqueued
//! twice, and none is missing while a daemon was up.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{rows, spawn_daemon, wait_for, wait_until, FakeSlack, Setup};
use slack_statusd::queue::{Queue, State};

const TOKEN: &str = "xoxp-crash";
const TARGETS: usize = 15;
/// Kill the daemon once the fake has received this many requests (a request has just arrived
/// and its answer is held back, so it is in flight at the kill).
const KILL_AFTER: [usize; 4] = [2, 5, 9, 12];
/// Requests per window, so at most this many in flight at once (they go out together).
const PER_TOKEN: usize = 3;

fn user(i: usize) -> String {
    format!("U{i:02}")
}

fn text(i: usize) -> String {
    format!("status {i}")
}

fn set(setup: &Setup, i: usize) {
    let (user, text) = (user(i), text(i));
    setup.set(&[
        "--token", "admin", "--user", &user, "--text", &text, "--emoji", ":zap:",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_draining_loses_nothing_and_resends_only_what_was_in_flight() {
    let started = Instant::now();
    let slack = FakeSlack::start(10, PER_TOKEN, Duration::from_secs(1), &[TOKEN]).await;
    // Slack applies each update at once but answers 250 ms later: a request stays in flight
    // long enough for a kill to land in the middle of it.
    slack.set_response_delay(Duration::from_millis(250));
    let setup = Setup::new(
        &slack,
        "[limits]\nper_user = 10\nper_token = 3\nwindow = \"1s\"\n\
         [retry]\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\n\
         [tokens.admin]\ntoken_env = \"CRASH_TOKEN\"\n",
    );
    let (cfg, db, dir) = (&setup.cfg, setup.db(), &setup.dir);
    Queue::open(&db, true).await.unwrap().close().await;
    for i in 0..TARGETS {
        set(&setup, i);
    }
    let envs = [("CRASH_TOKEN", TOKEN)];

    // Per user, how many kills found its row in flight.
    let mut in_flight_at_kill: BTreeMap<String, usize> = BTreeMap::new();
    let mut kills_with_a_request_on_the_wire = 0;
    for (n, &k) in KILL_AFTER.iter().enumerate() {
        let log = dir.path().join(format!("run{n}.log"));
        let mut child = spawn_daemon(cfg, &log, &envs);
        wait_for(
            &format!("{k} requests at the fake"),
            Duration::from_secs(15),
            || slack.received().len() >= k,
        )
        .await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let on_the_wire: BTreeSet<String> = slack
            .received()
            .into_iter()
            .filter_map(|r| r.user)
            .collect();
        let flying: Vec<String> = rows(&db)
            .await
            .into_iter()
            .filter(|r| r.state == State::InFlight)
            .map(|r| r.target.user.unwrap())
            .collect();
        assert!(
            flying.len() <= PER_TOKEN,
            "no more requests in flight than the window allows: {flying:?}"
        );
        if !flying.is_empty() {
            kills_with_a_request_on_the_wire += 1;
        }
        for u in flying {
            assert!(
                on_the_wire.contains(&u),
                "a row in flight is a request the fake received: {u}"
            );
            *in_flight_at_kill.entry(u).or_default() += 1;
        }
    }
    assert!(
        kills_with_a_request_on_the_wire >= 2,
        "the kills were meant to land mid-request; {kills_with_a_request_on_the_wire} did"
    );

    // The last run drains the rest.
    let log = dir.path().join("final.log");
    let mut child = spawn_daemon(cfg, &log, &envs);
    let q = Queue::open(&db, false).await.unwrap();
    wait_until("every row sent", Duration::from_secs(20), || async {
        let sent = q.list(&[State::Sent]).await.unwrap().len();
        (sent == TARGETS).then_some(()).ok_or_else(|| {
            format!(
                "{sent} of {TARGETS} rows sent; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
    })
    .await;
    q.close().await;
    common::stop(&mut child).await;

    // The database: every row sent, none added by the restarts.
    let all = rows(&db).await;
    assert_eq!(all.len(), TARGETS, "no row lost or enqueued twice");
    for r in &all {
        assert_eq!(r.state, State::Sent, "row {} ({:?})", r.id, r.target.user);
    }

    // The fake: every target has its status; duplicates only where a kill hit a request.
    let received = slack.received();
    let mut duplicates = 0;
    let mut accepted_by_user: BTreeMap<String, usize> = BTreeMap::new();
    for r in received.iter().filter(|r| r.status == 200) {
        *accepted_by_user.entry(r.user.clone().unwrap()).or_default() += 1;
    }
    for i in 0..TARGETS {
        let u = user(i);
        let profile = slack.profile(TOKEN, &u).expect("every target was updated");
        assert_eq!(profile["status_text"], text(i), "{u}'s status");
        let accepted = accepted_by_user.get(&u).copied().unwrap_or(0);
        let allowed = 1 + in_flight_at_kill.get(&u).copied().unwrap_or(0);
        assert!(
            (1..=allowed).contains(&accepted),
            "{u}: {accepted} accepted requests, allowed 1..={allowed} \
             (in flight at {} kills)",
            allowed - 1
        );
        duplicates += accepted - 1;
    }
    assert!(
        duplicates <= KILL_AFTER.len() * PER_TOKEN,
        "at most the requests in flight at each kill"
    );
    let users: BTreeSet<String> = received.iter().filter_map(|r| r.user.clone()).collect();
    assert_eq!(users.len(), TARGETS, "no request for a target nobody set");
    assert_eq!(
        slack.early_after_429(),
        0,
        "no request before a Retry-After ended"
    );
    eprintln!(
        "crash test: {} requests ({} accepted, {} answered 429), {duplicates} resent after a kill, \
         {kills_with_a_request_on_the_wire} of {} kills mid-request, {:?}",
        received.len(),
        received.iter().filter(|r| r.status == 200).count(),
        slack.limit_429s(),
        KILL_AFTER.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_loses_or_doubles_a_firing_of_a_rule() {
    let slack = FakeSlack::start(100, 100, Duration::from_secs(60), &[TOKEN]).await;
    slack.set_response_delay(Duration::from_millis(200));
    let setup = Setup::new(
        &slack,
        "timezone = \"UTC\"\n[limits]\nper_user = 100\nper_token = 100\nwindow = \"60s\"\n\
         [tokens.me]\ntoken_env = \"CRASH_TOKEN\"\n\
         [[rules]]\nname = \"every-second\"\ntoken = \"me\"\ncron = \"* * * * * *\"\n\
         status_text = \"Tick\"\nstatus_emoji = \":clock1:\"\nexpire_after = \"1h\"\n",
    );
    let (cfg, db, dir) = (&setup.cfg, setup.db(), &setup.dir);
    let envs = [("CRASH_TOKEN", TOKEN)];
    // When each run was up: (spawned, killed or stopped). A firing while a run was surely
    // ticking (from 500 ms after its start to 50 ms before its end) must have a row.
    let mut uptimes = Vec::new();
    for (n, k) in [3usize, 6, 9].into_iter().enumerate() {
        let spawned = chrono::Utc::now();
        let mut child = spawn_daemon(cfg, &dir.path().join(format!("rule{n}.log")), &envs);
        wait_for(&format!("{k} requests"), Duration::from_secs(10), || {
            slack.received().len() >= k
        })
        .await;
        child.kill().unwrap();
        child.wait().unwrap();
        uptimes.push((spawned, chrono::Utc::now()));
    }
    let spawned = chrono::Utc::now();
    let mut child = spawn_daemon(cfg, &dir.path().join("rule-final.log"), &envs);
    wait_for("three more requests", Duration::from_secs(10), || {
        slack.received().len() >= 12
    })
    .await;
    uptimes.push((spawned, chrono::Utc::now()));
    common::stop(&mut child).await;

    let mut all = rows(&db).await;
    all.sort_by_key(|r| r.fire_at);
    let fire_ats: BTreeSet<_> = all.iter().map(|r| r.fire_at).collect();
    assert_eq!(fire_ats.len(), all.len(), "no firing enqueued twice");
    let (first, last) = (all[0].fire_at, all[all.len() - 1].fire_at);
    let surely_up = |t: chrono::DateTime<chrono::Utc>| {
        uptimes.iter().any(|(from, to)| {
            *from + chrono::TimeDelta::milliseconds(500) <= t
                && t <= *to - chrono::TimeDelta::milliseconds(50)
        })
    };
    let mut t = first;
    let (mut checked, mut missing) = (0, 0);
    while t < last {
        if surely_up(t) {
            checked += 1;
            assert!(
                fire_ats.contains(&t),
                "the firing at {t} is missing though a run was up {uptimes:?}"
            );
        } else if !fire_ats.contains(&t) {
            missing += 1; // in a downtime, where only the latest firing is applied
        }
        t += chrono::TimeDelta::seconds(1);
    }
    assert!(
        checked > 0,
        "no firing fell while a run was surely up: the test checked nothing ({uptimes:?})"
    );
    for r in &all {
        assert!(
            matches!(
                r.state,
                State::Sent | State::Superseded | State::Pending | State::InFlight
            ),
            "row {} ended {}",
            r.id,
            r.state
        );
    }
    // At Slack: every firing that went out, at most twice (once more only after a kill).
    let mut by_expiry: BTreeMap<i64, usize> = BTreeMap::new();
    for r in slack.received().iter().filter(|r| r.status == 200) {
        *by_expiry
            .entry(r.profile["status_expiration"].as_i64().unwrap())
            .or_default() += 1;
    }
    let doubles = by_expiry.values().filter(|&&n| n > 1).count();
    eprintln!(
        "rule crash test: {} firings enqueued from {first} to {last}, {checked} while surely up, \
         {missing} skipped in downtimes, {doubles} resent after a kill",
        all.len()
    );
    assert!(by_expiry.values().all(|&n| n <= 2), "{by_expiry:?}");
    assert!(doubles <= 3, "at most one resend per kill: {by_expiry:?}");
    for r in all.iter().filter(|r| r.state == State::Sent) {
        assert!(
            by_expiry.contains_key(&(r.fire_at.timestamp() + 3600)),
            "sent row {} reached Slack",
            r.id
        );
    }
}
