//! An idle daemon costs nothing (issue 15 item 5): no poll wakes it, yet a row from
//! `slack-statusd set` still goes out within a second. Wake-ups are counted as the voluntary
//! context switches of all the daemon's threads, from /proc.

mod common;

use std::time::{Duration, Instant};

use common::{FakeSlack, Setup};

/// How long the daemon is watched idle.
const IDLE: Duration = Duration::from_secs(20);

/// The voluntary context switches of every thread of process `pid`.
fn wakeups(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_is_not_woken_and_set_still_arrives_within_a_second() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-idle"]).await;
    // One rule, far off: nothing to do but wait.
    let setup = Setup::new(
        &slack,
        "timezone = \"UTC\"\n[tokens.me]\ntoken_env = \"IDLE_T\"\n\
         [[rules]]\nname = \"new-year\"\ntoken = \"me\"\ncron = \"0 0 1 1 *\"\n\
         status_text = \"Happy new year\"\n",
    );
    let mut child = setup.spawn("daemon.log", &[("IDLE_T", "xoxp-idle")]);
    setup.wait_started("daemon.log").await;
    let pid = child.id();
    // The runtime's own start-up settles first (its threads park).
    let mut last = wakeups(pid);
    let settled = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = wakeups(pid);
        if now == last || Instant::now() > settled {
            break;
        }
        last = now;
    }
    let before = wakeups(pid);
    tokio::time::sleep(IDLE).await;
    let woken = wakeups(pid) - before;
    // Without the 1 s poll: at most the scheduler's 30 s clock check falls in the window,
    // which wakes a runtime thread or two.
    eprintln!("WOKEN {woken}");
    assert!(woken <= 3, "{woken} wake-ups in {IDLE:?} idle");

    let t0 = Instant::now();
    setup.set(&["--token", "me", "--text", "Here"]);
    common::wait_for("the row from set", Duration::from_secs(5), || {
        !slack.received().is_empty()
    })
    .await;
    let took = t0.elapsed();
    common::stop(&mut child).await;
    assert!(took < Duration::from_secs(1), "set took {took:?} to arrive");
}
