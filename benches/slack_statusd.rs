//! The benchmark of issue 5: rate-budget use, firing precision, footprint and scale, and queue
//! throughput, each against a baseline measured in the same run; and issue 12's calendar
//! expansion against the parse of the same feed; issue 14 reworked budget (four rows at a 50
//! and a 200 ms round trip) and precision (a ratio to the floor, median of five alternating
//! runs). Results: BENCHMARKS.md.
//!
//! Run with `cargo bench --bench slack_statusd` (about six minutes: budget two, precision one);
//! name sections after `--` to run only those: `cargo bench --bench slack_statusd -- budget
//! precision footprint queue calendar`.
//!
//! The daemon is the real release binary, driven like `tests/e2e.rs` drives it, against the
//! fake Slack of `tests/common` (127.0.0.1, limits enforced exactly). Under `cargo test` this
//! target is only built and its `main` returns at once: timings live here, never in tests.

// In a folder of its own, so that cargo does not take it for a bench target.
#[path = "calendar/feed.rs"]
mod calendar_feed;
#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, TimeDelta, Utc};
use common::{spawn_daemon, wait_exit, wait_for, FakeSlack};
use slack_statusd::profile::{Patch, Status};
use slack_statusd::queue::{Claim, Finish, NewUpdate, Queue, Target};
use sqlx::sqlite::SqlitePoolOptions;

/// How long the footprint runs watch an idle daemon; CPU is scaled to a minute.
const IDLE: Duration = Duration::from_secs(30);

/// One line of the result table.
struct Row {
    what: String,
    result: String,
    goal: String,
    baseline: String,
    verdict: String,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn add(&mut self, what: &str, result: String, goal: &str, baseline: String, verdict: String) {
        println!("  {what}: {result} (goal {goal}; baseline {baseline}) {verdict}");
        self.rows.push(Row {
            what: what.into(),
            result,
            goal: goal.into(),
            baseline,
            verdict,
        });
    }

    fn render(&self) -> String {
        let mut s = String::from(
            "| # | measurement | slack-statusd | goal | baseline (same run) | verdict |\n\
             | --- | --- | --- | --- | --- | --- |\n",
        );
        for r in &self.rows {
            let (n, what) = r.what.split_once(' ').unwrap_or(("", &r.what));
            let _ = writeln!(
                s,
                "| {n} | {what} | {} | {} | {} | {} |",
                r.result, r.goal, r.baseline, r.verdict
            );
        }
        s
    }
}

fn verdict(ok: bool) -> String {
    if ok { "met" } else { "**missed**" }.to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it.
    if !args.iter().any(|a| a == "--bench") {
        println!("slack_statusd benchmark: not run (use `cargo bench --bench slack_statusd`)");
        return;
    }
    let wanted: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.contains(&name);

    println!("{}", machine());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut table = Table::default();
    let started = Instant::now();
    rt.block_on(async {
        if run("budget") {
            budget(&mut table).await;
        }
        if run("precision") {
            precision(&mut table).await;
        }
        if run("footprint") {
            footprint(&mut table).await;
        }
        if run("queue") {
            queue(&mut table).await;
        }
    });
    // In-process and single-threaded: outside the runtime, which would only add threads.
    if run("calendar") {
        calendar(&mut table);
        // The idle daemon is a process of its own; its feed server needs the runtime.
        rt.block_on(calendar_idle(&mut table));
    }
    println!(
        "\nslack-statusd benchmark, {:.0} s in all\n\n{}",
        started.elapsed().as_secs_f64(),
        table.render()
    );
}

// ---------------------------------------------------------------------------------------------
// Machine and process helpers

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    format!(
        "machine: {} cores ({}), {} memory, rustc: {}, load average: {}",
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'"),
        sh("free -h | awk '/^Mem:/ {print $2}'"),
        sh("rustc --version"),
        sh("cut -d' ' -f1-3 /proc/loadavg"),
    )
}

/// VmRSS and VmHWM in kB, and CPU time (utime + stime in clock ticks; per-thread schedstat
/// in ns) of a running process.
#[derive(Debug, Clone, Copy)]
struct ProcSample {
    rss_kb: u64,
    hwm_kb: u64,
    /// The anonymous part of VmRSS (heap, stacks): what the data costs. The rest is mostly
    /// RssFile, the binary's own pages, the same whatever the daemon holds.
    anon_kb: u64,
    cpu_ticks: u64,
    cpu_ns: u64,
    /// Voluntary context switches of every live thread: how often it was woken from sleep.
    wakeups: u64,
}

fn sample(pid: u32) -> ProcSample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3; utime and
    // stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // On-CPU time of every live thread in ns (schedstat), finer than stat's 10 ms ticks.
    let cpu_ns = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let wakeups = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
                .filter_map(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .sum()
        })
        .unwrap_or(0);
    ProcSample {
        wakeups,
        cpu_ns,
        rss_kb: kb("VmRSS:"),
        hwm_kb: kb("VmHWM:"),
        anon_kb: kb("RssAnon:"),
        cpu_ticks: fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0),
    }
}

fn clock_ticks() -> f64 {
    sh("getconf CLK_TCK").parse().unwrap_or(100.0)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|s| s.contains(needle))
}

/// A daemon started on a config; `ready` is the time from spawn to its "started" log line.
struct Daemon {
    child: Child,
    ready: Duration,
    log: PathBuf,
}

async fn start_daemon(config: &Path, envs: &[(&str, &str)], deadline: Duration) -> Daemon {
    let log = config.with_file_name("daemon.log");
    let t0 = Instant::now();
    let mut child = spawn_daemon(config, &log, envs);
    let end = t0 + deadline;
    while !log_has(&log, "started:") {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the daemon exited with {status} before it started:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < end,
            "the daemon did not start within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Daemon {
        ready: t0.elapsed(),
        child,
        log,
    }
}

async fn stop_daemon(mut d: Daemon) {
    common::signal(&d.child, "TERM");
    let code = wait_exit(&mut d.child, Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "daemon exit; log at {}", d.log.display());
}

/// A wall-clock instant `lead` from now, rounded up to a whole second, and the same instant on
/// the monotonic clock that the fake stamps arrivals with.
fn instant_ahead(lead: Duration) -> (DateTime<Utc>, Instant) {
    let (mono, wall) = (Instant::now(), SystemTime::now());
    let wall: DateTime<Utc> = wall.into();
    let target = wall + TimeDelta::from_std(lead).unwrap();
    let ms = target.timestamp_millis();
    let rounded =
        DateTime::from_timestamp_millis(ms + (1000 - ms.rem_euclid(1000)) % 1000).unwrap();
    let ahead = (rounded - wall).to_std().unwrap();
    (rounded, mono + ahead)
}

fn at_str(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// 1. Rate-budget use

/// `[limits] per_token`: the requests of one burst.
const BURST: usize = 30;

/// One row of issue 14's budget section: `users` on one token, 10/user and 30/token per
/// `window`, against a fake that answers in 0.8–1.2 × `rtt`.
#[derive(Clone, Copy)]
struct BudgetCase {
    row: &'static str,
    users: usize,
    window: Duration,
    rtt: Duration,
}

const BUDGET_CASES: [BudgetCase; 4] = [
    BudgetCase {
        row: "1a",
        users: 60,
        window: Duration::from_secs(6),
        rtt: Duration::from_millis(50),
    },
    BudgetCase {
        row: "1b",
        users: 300,
        window: Duration::from_secs(2),
        rtt: Duration::from_millis(50),
    },
    BudgetCase {
        row: "1c",
        users: 60,
        window: Duration::from_secs(6),
        rtt: Duration::from_millis(200),
    },
    BudgetCase {
        row: "1d",
        users: 300,
        window: Duration::from_secs(2),
        rtt: Duration::from_millis(200),
    },
];

impl BudgetCase {
    /// Window gaps between the first burst and the last: ⌈users/30⌉ − 1.
    fn gaps(self) -> u32 {
        (self.users.div_ceil(BURST) - 1) as u32
    }

    /// The legal minimum after the first send, s: a window per gap.
    fn legal_min(self) -> f64 {
        (self.window * self.gaps()).as_secs_f64()
    }

    /// The limiter's margin per window, max(50 ms, 1% of it) (`margin` in
    /// src/throttle/limiter.rs, whose upper clamps do not bite at these windows).
    fn margin(self) -> Duration {
        (self.window / 100).max(Duration::from_millis(50))
    }

    /// Issue 14's bound: the legal minimum, two round trips, and a margin per window gap.
    fn bound(self) -> f64 {
        self.legal_min() + (self.rtt * 2 + self.margin() * self.gaps()).as_secs_f64()
    }

    fn describe(self) -> String {
        format!(
            "{} users, 1 token, {} s window, {} ms RTT",
            self.users,
            self.window.as_secs_f64(),
            self.rtt.as_millis()
        )
    }
}

/// Arrivals of accepted requests and 429s seen by the fake, for one run.
struct BudgetRun {
    /// First accepted arrival to last accepted arrival.
    span: f64,
    /// The widest spread (first to last arrival) of a group of 30 consecutive accepted
    /// arrivals, s.
    widest_burst: f64,
    /// 429s answered.
    r429: usize,
    /// Requests that came while the token had been told to wait.
    early: usize,
    /// Per-window timing.
    detail: String,
}

fn budget_result(slack: &FakeSlack) -> BudgetRun {
    let rec = slack.received();
    let accepted: Vec<_> = rec.iter().filter(|r| r.status == 200).collect();
    let mut ok: Vec<Instant> = accepted.iter().map(|r| r.at).collect();
    ok.sort();
    let (first, last) = (ok[0], ok[ok.len() - 1]);
    // Where the time goes: from each request to the one 30 later (a window plus the
    // throttle's margin at best), how long each burst of 30 took to arrive, and how many
    // requests the fake held at once (arrived, not yet answered).
    let gaps: Vec<String> = (BURST..ok.len())
        .step_by(BURST)
        .map(|i| format!("{:.3}", (ok[i] - ok[i - BURST]).as_secs_f64()))
        .collect();
    let spreads: Vec<f64> = ok
        .chunks(BURST)
        .map(|c| (c[c.len() - 1] - c[0]).as_secs_f64())
        .collect();
    let bursts: Vec<String> = spreads.iter().map(|s| format!("{:.0}", s * 1e3)).collect();
    let mut edges: Vec<(Instant, i32)> = accepted
        .iter()
        .flat_map(|r| [(r.at, 1), (r.answered, -1)])
        .collect();
    // An answer at the very instant of an arrival leaves first.
    edges.sort();
    let mut held = 0;
    let mut most_held = 0;
    for (_, d) in edges {
        held += d;
        most_held = most_held.max(held);
    }
    BudgetRun {
        detail: format!(
            "window-to-window gaps (s): {}; bursts of 30 took (ms): {}; at most {most_held} \
             requests held by the fake at once",
            gaps.join(" "),
            bursts.join(" ")
        ),
        span: (last - first).as_secs_f64(),
        widest_burst: spreads.iter().copied().fold(0.0, f64::max),
        r429: slack.limit_429s(),
        early: slack.early_after_429(),
    }
}

/// The fake of a budget run: one admin token, its limits, answers held back 0.8–1.2 × `rtt`.
async fn budget_slack(window: Duration, rtt: Duration) -> FakeSlack {
    let slack = FakeSlack::start(10, BURST, window, &["xoxp-admin"]).await;
    slack.set_response_delay_range(rtt * 4 / 5, rtt * 6 / 5);
    slack
}

async fn all_set(slack: &FakeSlack, token: &str, users: usize) {
    wait_for(
        "every user to have a status",
        Duration::from_secs(120),
        || {
            slack
                .received()
                .iter()
                .filter(|r| r.status == 200 && r.token == token)
                .count()
                >= users
        },
    )
    .await;
}

/// The daemon setting `users` statuses due at one instant on one admin token.
async fn budget_run(users: usize, window: Duration, rtt: Duration) -> BudgetRun {
    let slack = budget_slack(window, rtt).await;
    let dir = tempfile::tempdir().unwrap();
    let (fire, fire_mono) = instant_ahead(Duration::from_secs(4));
    let mut config = format!(
        "database = \"queue.db\"\napi_url = {:?}\ntimezone = \"UTC\"\n\
         [limits]\nper_user = 10\nper_token = {BURST}\nwindow = \"{}\"\n\
         [tokens.admin]\ntoken_env = \"BENCH_ADMIN\"\n",
        slack.api_url(),
        humantime::format_duration(window)
    );
    for i in 0..users {
        let _ = write!(
            config,
            "[[rules]]\nname = \"u{i:03}\"\ntoken = \"admin\"\nuser = \"U{i:03}\"\nat = \"{}\"\n\
             status_text = \"Bench {i}\"\nstatus_emoji = \":zap:\"\nexpire_after = \"2h\"\n",
            at_str(fire)
        );
    }
    let cfg = dir.path().join("config.toml");
    write_private(&cfg, &config);
    let d = start_daemon(
        &cfg,
        &[("BENCH_ADMIN", "xoxp-admin")],
        Duration::from_secs(10),
    )
    .await;
    assert!(
        Utc::now() < fire,
        "the daemon started after the firing instant"
    );
    all_set(&slack, "xoxp-admin", users).await;
    stop_daemon(d).await;
    let mut run = budget_result(&slack);
    let first = slack.received().iter().map(|r| r.at).min().unwrap();
    run.detail = format!(
        "first arrival +{:.0} ms after the instant; {}",
        first.saturating_duration_since(fire_mono).as_secs_f64() * 1e3,
        run.detail
    );
    run
}

/// What the official SDKs do: send as fast as possible, and after a 429 sleep `Retry-After`
/// and retry the same request. `concurrency` requests are in flight at once.
async fn budget_reactive(
    concurrency: usize,
    users: usize,
    window: Duration,
    rtt: Duration,
) -> BudgetRun {
    let slack = budget_slack(window, rtt).await;
    let url = format!("{}/users.profile.set", slack.api_url());
    let client = reqwest::Client::new();
    let todo = Arc::new(Mutex::new((0..users).collect::<Vec<_>>()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, todo) = (client.clone(), url.clone(), todo.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(i) = todo.lock().unwrap().pop() else {
                    return;
                };
                let body = serde_json::json!({
                    "user": format!("U{i:03}"),
                    "profile": {"status_text": format!("Bench {i}"), "status_emoji": ":zap:",
                                "status_expiration": 0}
                });
                loop {
                    let resp = client
                        .post(&url)
                        .bearer_auth("xoxp-admin")
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    if resp.status() != 429 {
                        break;
                    }
                    let wait: u64 = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    budget_result(&slack)
}

async fn budget(table: &mut Table) {
    println!(
        "\n1. rate-budget use: users due at one instant on one token, 10/user and {BURST}/token \
         per window, the fake answering in 0.8–1.2 × RTT"
    );
    for case in BUDGET_CASES {
        let t0 = Instant::now();
        let daemon = budget_run(case.users, case.window, case.rtt).await;
        let (min, bound) = (case.legal_min(), case.bound());
        println!(
            "  {} {}: {:.3} s = {:.3} × min {min:.0} s (bound {bound:.3} s), widest burst {:.0} ms, \
             {} 429s, {} early; {:.0} s to run",
            case.row,
            case.describe(),
            daemon.span,
            daemon.span / min,
            daemon.widest_burst * 1e3,
            daemon.r429,
            daemon.early,
            t0.elapsed().as_secs_f64()
        );
        println!("    {}", daemon.detail);
        let baseline = if case.row == "1b" {
            let fmt = |r: &BudgetRun| {
                format!(
                    "{:.2} s = {:.3} × min, {} 429s",
                    r.span,
                    r.span / min,
                    r.r429
                )
            };
            let mut runs = Vec::new();
            for (what, concurrency) in [("sequential", 1), ("4 at once", 4)] {
                let r = budget_reactive(concurrency, case.users, case.window, case.rtt).await;
                println!("  reactive, {what}: {}, {} early", fmt(&r), r.early);
                runs.push(format!("{what} {}", fmt(&r)));
            }
            format!("reactive SDK-style client: {}", runs.join("; "))
        } else {
            "—".into()
        };
        let target = (case.rtt * 2).as_secs_f64();
        let missed: Vec<&str> = [
            (daemon.span <= bound, "completion"),
            (daemon.widest_burst <= target, "burst"),
            (daemon.r429 == 0, "429s"),
        ]
        .into_iter()
        .filter_map(|(ok, what)| (!ok).then_some(what))
        .collect();
        table.add(
            &format!(
                "{} rate-budget use ({}; legal min {min:.0} s)",
                case.row,
                case.describe()
            ),
            format!(
                "{:.3} s = {:.3} × min; widest burst of 30 {:.0} ms; {} 429s",
                daemon.span,
                daemon.span / min,
                daemon.widest_burst * 1e3,
                daemon.r429
            ),
            &format!(
                "≤ {bound:.3} s (min + 2 RTT + {} × {} ms margin); burst ≤ {:.0} ms (2 RTT); 0 429s",
                case.gaps(),
                case.margin().as_millis(),
                target * 1e3
            ),
            baseline,
            if missed.is_empty() {
                verdict(true)
            } else {
                format!("{}: {}", verdict(false), missed.join(", "))
            },
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Firing precision

const PRECISION_TOKENS: usize = 1000;

fn latencies(slack: &FakeSlack, fire: Instant) -> Vec<f64> {
    let mut v: Vec<f64> = slack
        .received()
        .iter()
        .map(|r| {
            if r.at >= fire {
                (r.at - fire).as_secs_f64() * 1000.0
            } else {
                -((fire - r.at).as_secs_f64() * 1000.0)
            }
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn tokens_list(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("xoxp-bench-{i:05}")).collect()
}

async fn precision_daemon() -> Precision {
    let tokens = tokens_list(PRECISION_TOKENS);
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &refs).await;
    let dir = tempfile::tempdir().unwrap();
    let (fire, fire_mono) = instant_ahead(Duration::from_secs(8));
    let mut config = format!(
        "database = \"queue.db\"\napi_url = {:?}\ntimezone = \"UTC\"\n",
        slack.api_url()
    );
    for (i, t) in tokens.iter().enumerate() {
        let _ = write!(
            config,
            "[tokens.t{i:05}]\ntoken = \"{t}\"\n[[rules]]\nname = \"r{i:05}\"\ntoken = \"t{i:05}\"\n\
             at = \"{}\"\nstatus_text = \"On time {i}\"\nstatus_emoji = \":stopwatch:\"\n\
             expire_after = \"1h\"\n",
            at_str(fire)
        );
    }
    let cfg = dir.path().join("config.toml");
    write_private(&cfg, &config);
    let d = start_daemon(&cfg, &[], Duration::from_secs(30)).await;
    assert!(
        Utc::now() < fire,
        "the daemon took {:?} to start, past the firing instant",
        d.ready
    );
    wait_for("every token's request", Duration::from_secs(60), || {
        slack.received().len() >= PRECISION_TOKENS
    })
    .await;
    let ready = d.ready;
    let log = std::fs::read_to_string(&d.log).unwrap_or_default();
    stop_daemon(d).await;
    // Where the time goes: the scheduler's commit (its last "fired" line) and each request's
    // start as the daemon logged it in `sends` for the throttle.
    let fired_ms = log
        .lines()
        .filter(|l| l.contains(" fired "))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            (t.with_timezone(&Utc) - fire)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0
        })
        .fold(f64::NAN, f64::max);
    let q = Queue::open(&dir.path().join("queue.db"), false)
        .await
        .unwrap();
    let mut starts = Vec::new();
    for i in 0..PRECISION_TOKENS {
        for (_, _, at) in q
            .sends_since(&format!("t{i:05}"), fire - TimeDelta::minutes(1))
            .await
            .unwrap()
        {
            starts.push((at - fire).num_milliseconds() as f64);
        }
    }
    q.close().await;
    starts.sort_by(f64::total_cmp);
    Precision {
        arrivals: latencies(&slack, fire_mono),
        starts,
        fired_ms,
        ready,
    }
}

struct Precision {
    /// Scheduled instant → arrival at the fake, ms, sorted.
    arrivals: Vec<f64>,
    /// Scheduled instant → request start in the daemon, ms, sorted.
    starts: Vec<f64>,
    /// Scheduled instant → the scheduler's last "fired" log line (rows committed), ms; negative
    /// where the scheduler commits firings ahead of their instant.
    fired_ms: f64,
    /// Spawn → "started".
    ready: Duration,
}

/// The floor on this machine: a tokio timer set for the instant, then all requests at once
/// through one reqwest client, as the daemon's workers share one.
async fn precision_floor() -> Vec<f64> {
    let tokens = tokens_list(PRECISION_TOKENS);
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &refs).await;
    let url = format!("{}/users.profile.set", slack.api_url());
    let client = reqwest::Client::new();
    let (_, fire) = instant_ahead(Duration::from_secs(2));
    tokio::time::sleep_until(fire.into()).await;
    let mut tasks = Vec::new();
    for t in tokens {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            client
                .post(&url)
                .bearer_auth(t)
                .json(&serde_json::json!({"profile": {"status_text": "On time",
                    "status_emoji": ":stopwatch:", "status_expiration": 0}}))
                .send()
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    latencies(&slack, fire)
}

/// Runs of the daemon, each followed by one of the floor.
const PRECISION_RUNS: usize = 5;

fn precision_fmt(v: &[f64]) -> String {
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(v, 50.0),
        percentile(v, 99.0),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

/// One daemon run and the floor run after it.
struct PrecisionRun {
    daemon: Precision,
    floor: Vec<f64>,
}

impl PrecisionRun {
    /// The daemon's p99 over the floor's.
    fn ratio(&self) -> f64 {
        percentile(&self.daemon.arrivals, 99.0) / percentile(&self.floor, 99.0)
    }
}

/// "p50/p99" of latencies, in ms.
fn p50_p99(v: &[f64]) -> String {
    format!("{:.0}/{:.0}", percentile(v, 50.0), percentile(v, 99.0))
}

async fn precision(table: &mut Table) {
    println!(
        "\n2. firing precision: {PRECISION_TOKENS} rules due at one instant on {PRECISION_TOKENS} \
         tokens; the daemon and the in-process floor alternately, {PRECISION_RUNS} runs each"
    );
    let mut runs = Vec::new();
    for n in 1..=PRECISION_RUNS {
        let t0 = Instant::now();
        let daemon = precision_daemon().await;
        let floor = precision_floor().await;
        let run = PrecisionRun { daemon, floor };
        let p = &run.daemon;
        println!(
            "  run {n}: daemon ({PRECISION_TOKENS} tokens ready in {:.2} s): rows committed \
             {:+.0} ms; request starts first {:+.0} ms, {}; arrivals {}",
            p.ready.as_secs_f64(),
            p.fired_ms,
            p.starts.first().copied().unwrap_or(f64::NAN),
            precision_fmt(&p.starts),
            precision_fmt(&p.arrivals)
        );
        println!(
            "         floor: {}; daemon p99 / floor p99 = {:.2}; {:.0} s to run",
            precision_fmt(&run.floor),
            run.ratio(),
            t0.elapsed().as_secs_f64()
        );
        runs.push(run);
    }
    let mut by_ratio: Vec<&PrecisionRun> = runs.iter().collect();
    by_ratio.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    let mid = by_ratio[by_ratio.len() / 2];
    let n = 1 + runs.iter().position(|r| std::ptr::eq(r, mid)).unwrap();
    let each =
        |f: &dyn Fn(&PrecisionRun) -> String| runs.iter().map(f).collect::<Vec<_>>().join(", ");
    table.add(
        &format!(
            "2 firing precision (1,000 rules, 1,000 tokens, one instant → arrival at the fake; \
             daemon p99 / floor p99, median of {PRECISION_RUNS} alternating runs)"
        ),
        format!(
            "{:.2} (runs: {}); daemon p50/p99 per run: {} ms",
            mid.ratio(),
            each(&|r| format!("{:.2}", r.ratio())),
            each(&|r| p50_p99(&r.daemon.arrivals))
        ),
        "≤ 1.25",
        format!(
            "timer + 1,000 concurrent requests in-process, p50/p99 per run: {} ms",
            each(&|r| p50_p99(&r.floor))
        ),
        verdict(mid.ratio() <= 1.25),
    );
    table.add(
        &format!(
            "2b firing precision inside the daemon (instant → request start, from `sends`; \
             the median run, {n})"
        ),
        format!(
            "{}; all rows committed at {:+.0} ms",
            precision_fmt(&mid.daemon.starts),
            mid.daemon.fired_ms
        ),
        "—",
        "—".into(),
        "—".into(),
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Footprint and scale

/// The rules of one token: `n` rules due about 12 h from now (nothing fires during the run),
/// half `at`/`days`, half cron (the minute varies with the token), all with a status and an
/// expiry.
fn token_rules(out: &mut String, tok: usize, n: usize, inline: bool) {
    let later = Utc::now() + TimeDelta::hours(12);
    let (h, m) = (later.format("%H"), later.format("%M"));
    if inline {
        let _ = write!(out, "[tokens.t{tok:05}]\ntoken = \"xoxp-idle-{tok:05}\"\n");
    } else {
        let _ = write!(out, "[tokens.t{tok:05}]\ntoken_env = \"BENCH_IDLE\"\n");
    }
    for r in 0..n {
        let schedule = if r % 2 == 0 {
            format!("at = \"{h}:{m}\"\ndays = \"mon-fri\"")
        } else {
            // 60 distinct expressions over the config, as rules made from a few templates.
            format!("cron = \"{} {h} * * 1-5\"", tok % 60)
        };
        let _ = write!(
            out,
            "[[rules]]\nname = \"t{tok:05}-r{r:02}\"\ntoken = \"t{tok:05}\"\nuser = \"U{tok:05}{r:02}\"\n\
             {schedule}\nstatus_text = \"Focus time {r}\"\nstatus_emoji = \":headphones:\"\n\
             expire_after = \"90m\"\n"
        );
    }
}

const HEADER: &str =
    "database = \"queue.db\"\napi_url = \"http://127.0.0.1:9/api\"\ntimezone = \"UTC\"\n";

/// The 100,000-rule config on 10,000 tokens, as one file.
fn big_single(dir: &Path) -> PathBuf {
    let mut text = String::from(HEADER);
    for t in 0..10_000 {
        token_rules(&mut text, t, 10, true);
    }
    let cfg = dir.join("config.toml");
    write_private(&cfg, &text);
    cfg
}

/// The same rules as 10,000 drop-ins of one token each.
fn big_drop_ins(dir: &Path) -> PathBuf {
    let cfg = dir.join("config.toml");
    write_private(&cfg, HEADER);
    let d = dir.join("config.d");
    std::fs::create_dir(&d).unwrap();
    for t in 0..10_000 {
        let mut text = String::new();
        token_rules(&mut text, t, 10, true);
        write_private(&d.join(format!("t{t:05}.toml")), &text);
    }
    cfg
}

/// Wall time and peak RSS (kB) of `slack-statusd --config X check`.
fn check_run(cfg: &Path) -> (f64, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    let t0 = Instant::now();
    // Under /usr/bin/time when there is one, for the peak RSS it prints last.
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.args(["-f", "%M"]).arg(common::bin());
        c
    } else {
        Command::new(common::bin())
    };
    let out = cmd
        .arg("--config")
        .arg(cfg)
        .arg("check")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "check failed: {stderr}");
    let peak = stderr.lines().last().and_then(|l| l.trim().parse().ok());
    (wall, peak)
}

/// Median of three `check` runs, and the largest peak RSS seen.
fn check_median(cfg: &Path) -> (f64, Option<u64>) {
    let runs: Vec<(f64, Option<u64>)> = (0..3).map(|_| check_run(cfg)).collect();
    let peak = runs.iter().filter_map(|r| r.1).max();
    (median(runs.iter().map(|r| r.0).collect()), peak)
}

/// The floor of any TOML loader: read and parse the same files into `toml::Table`, in-process.
fn toml_floor(cfg: &Path) -> f64 {
    median(
        (0..3)
            .map(|_| {
                let t0 = Instant::now();
                let mut files = vec![cfg.to_path_buf()];
                if let Ok(rd) = std::fs::read_dir(cfg.with_file_name("config.d")) {
                    files.extend(rd.map(|e| e.unwrap().path()));
                }
                for f in files {
                    let text = std::fs::read_to_string(f).unwrap();
                    let table: toml::Table = toml::from_str(&text).unwrap();
                    std::hint::black_box(table);
                }
                t0.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Start a daemon, let it settle, then watch it idle for [`IDLE`].
/// Start a daemon on `cfg`, watch it idle for [`IDLE`]: how long it took to be ready, the
/// last sample, CPU seconds per idle minute and wake-ups (voluntary context switches of all
/// its threads) per idle minute.
async fn idle_run(cfg: &Path, envs: &[(&str, &str)]) -> (Duration, ProcSample, f64, f64) {
    let d = start_daemon(cfg, envs, Duration::from_secs(120)).await;
    let ready = d.ready;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = sample(d.child.id());
    tokio::time::sleep(IDLE).await;
    let after = sample(d.child.id());
    let ticks = (after.cpu_ticks - before.cpu_ticks) as f64 / clock_ticks();
    let ns = after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / 1e9;
    // schedstat has ns resolution but misses threads that exit during the run; stat counts
    // them, in 10 ms ticks. Both are printed; the figure is schedstat's where there is one.
    println!(
        "    idle CPU over {} s: schedstat {ns:.4} s, stat {ticks:.2} s",
        IDLE.as_secs()
    );
    let per_min = 60.0 / IDLE.as_secs_f64();
    let cpu_per_min = if after.cpu_ns > 0 { ns } else { ticks } * per_min;
    let wakeups_per_min = after.wakeups.saturating_sub(before.wakeups) as f64 * per_min;
    println!(
        "    idle wake-ups over {} s: {}",
        IDLE.as_secs(),
        after.wakeups.saturating_sub(before.wakeups)
    );
    stop_daemon(d).await;
    (ready, after, cpu_per_min, wakeups_per_min)
}

async fn footprint(table: &mut Table) {
    println!(
        "\n3. footprint: idle daemon over {} s (CPU scaled to a minute); 100,000-rule loads",
        IDLE.as_secs()
    );
    let small_dir = tempfile::tempdir().unwrap();
    let mut small = String::from(HEADER);
    token_rules(&mut small, 0, 10, false);
    let small_cfg = small_dir.path().join("config.toml");
    write_private(&small_cfg, &small);
    let (small_ready, s, s_cpu, s_wakeups) =
        idle_run(&small_cfg, &[("BENCH_IDLE", "xoxp-idle")]).await;
    println!(
        "  10 rules: ready in {:.2} s, VmRSS {:.1} MB, VmHWM {:.1} MB, {:.4} s CPU per idle minute",
        small_ready.as_secs_f64(),
        mb(s.rss_kb),
        mb(s.hwm_kb),
        s_cpu
    );

    let big_dir = tempfile::tempdir().unwrap();
    let single = big_single(big_dir.path());
    let single_bytes = std::fs::metadata(&single).unwrap().len();
    let (big_ready, b, b_cpu, _) = idle_run(&single, &[]).await;
    println!(
        "  100,000 rules: ready in {:.2} s, VmRSS {:.1} MB, VmHWM {:.1} MB, {:.4} s CPU per idle minute",
        big_ready.as_secs_f64(),
        mb(b.rss_kb),
        mb(b.hwm_kb),
        b_cpu
    );
    let (single_s, single_peak) = check_median(&single);
    let single_floor = toml_floor(&single);
    println!(
        "  check, one {:.1} MB file: {:.2} s (peak RSS {:?} kB); toml::from_str alone {:.2} s",
        single_bytes as f64 / 1e6,
        single_s,
        single_peak,
        single_floor
    );
    let drop_dir = tempfile::tempdir().unwrap();
    let drop_cfg = big_drop_ins(drop_dir.path());
    let (drop_s, drop_peak) = check_median(&drop_cfg);
    let drop_floor = toml_floor(&drop_cfg);
    println!(
        "  check, 10,000 drop-ins: {:.2} s (peak RSS {:?} kB); read + toml::from_str alone {:.2} s",
        drop_s, drop_peak, drop_floor
    );

    table.add(
        "3a idle daemon, 10 rules: memory",
        format!(
            "VmRSS {:.1} MB (VmHWM {:.1} MB)",
            mb(s.rss_kb),
            mb(s.hwm_kb)
        ),
        "≤ 15 MB",
        "—".into(),
        verdict(mb(s.rss_kb) <= 15.0),
    );
    table.add(
        "3b idle daemon, 10 rules: CPU",
        format!("{s_cpu:.3} s per minute"),
        "< 0.05 s per minute",
        "—".into(),
        verdict(s_cpu < 0.05),
    );
    table.add(
        "3b' idle daemon, 10 rules: wake-ups (voluntary context switches, all threads)",
        format!("{s_wakeups:.0} per minute"),
        "— (the 30 s clock check only)",
        "before issue 15 item 5 (a 1 s data_version poll): 328 per minute".into(),
        "—".into(),
    );
    table.add(
        "3c idle daemon, 100,000 rules on 10,000 tokens: memory",
        format!(
            "VmRSS {:.1} MB (VmHWM {:.1} MB)",
            mb(b.rss_kb),
            mb(b.hwm_kb)
        ),
        "≤ 100 MB once loaded",
        format!("10 rules: {:.1} MB", mb(s.rss_kb)),
        verdict(mb(b.rss_kb) <= 100.0),
    );
    table.add(
        "3d idle daemon, 100,000 rules: CPU",
        format!("{b_cpu:.3} s per minute"),
        "— (10-rule goal: < 0.05 s)",
        format!("10 rules: {s_cpu:.3} s"),
        "—".into(),
    );
    table.add(
        "3e first start to READY, 100,000 rules",
        format!("{:.2} s", big_ready.as_secs_f64()),
        "—",
        format!("10 rules: {:.2} s", small_ready.as_secs_f64()),
        "—".into(),
    );
    table.add(
        "3f load + validate 100,000 rules, one file (`check`, median of 3)",
        format!("{single_s:.2} s"),
        "≤ 2 s",
        format!(
            "read + toml::from_str alone: {single_floor:.2} s ({:.1}×)",
            single_s / single_floor
        ),
        verdict(single_s <= 2.0),
    );
    table.add(
        "3g load + validate 100,000 rules, 10,000 drop-ins (`check`, median of 3)",
        format!("{drop_s:.2} s"),
        "≤ 2 s",
        format!(
            "read + toml::from_str alone: {drop_floor:.2} s ({:.1}×)",
            drop_s / drop_floor
        ),
        verdict(drop_s <= 2.0),
    );
    let peak = single_peak.map(mb);
    table.add(
        "3h peak RSS parsing one 100,000-rule file (`check` VmHWM)",
        peak.map_or("n/a (no /usr/bin/time)".into(), |p| format!("{p:.1} MB")),
        "≤ 300 MB",
        format!(
            "file: {:.1} MB; 10,000 drop-ins: {}",
            single_bytes as f64 / 1e6,
            drop_peak.map_or("n/a".into(), |p| format!("{:.1} MB", mb(p)))
        ),
        peak.map_or("—".into(), |p| verdict(p <= 300.0)),
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Queue throughput

const QUEUE_ITEMS: usize = 2000;

fn patch(i: usize) -> Patch {
    Patch {
        status: Some(Status {
            text: format!("Queue {i}"),
            emoji: ":inbox_tray:".into(),
            expiration: 0,
        }),
        ..Patch::default()
    }
}

/// enqueue → claim → finish(Sent) per item through `Queue`; items per second.
async fn queue_api(path: &Path) -> f64 {
    let q = Queue::open(path, true).await.unwrap();
    let t0 = Instant::now();
    for i in 0..QUEUE_ITEMS {
        let now = Utc::now();
        let target = Target {
            token: "bench".into(),
            user: Some(format!("U{:03}", i % 100)),
        };
        q.enqueue(
            &NewUpdate {
                rule: Some(format!("r{i}")),
                target: target.clone(),
                fire_at: now,
                patch: patch(i),
                respect_manual: false,
                restore: false,
            },
            now,
        )
        .await
        .unwrap();
        let Claim::Send(batch) = q.claim(&target, Utc::now()).await.unwrap() else {
            panic!("item {i} was not claimable");
        };
        let started = Utc::now();
        q.finish(&batch, &Finish::Sent, started, Utc::now())
            .await
            .unwrap();
    }
    let rate = QUEUE_ITEMS as f64 / t0.elapsed().as_secs_f64();
    q.close().await;
    rate
}

/// The reference: the same schema (made by `Queue::open`) and PRAGMAs, a plain sqlx loop of
/// one INSERT and one UPDATE per item, each its own autocommit.
async fn queue_reference(path: &Path) -> f64 {
    Queue::open(path, true).await.unwrap().close().await;
    let options = slack_statusd::queue::connect_options(path);
    // The pool as Queue::open builds it, but without the liveness ping on each acquire
    // (sqlx's default): a local file needs none, so the fastest plain loop skips it.
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .unwrap();
    let t0 = Instant::now();
    for i in 0..QUEUE_ITEMS {
        let now = Utc::now().timestamp_millis();
        let text = serde_json::to_string(&patch(i)).unwrap();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO updates (rule, token, user, fire_at, patch, respect_manual, state,
                                  not_before, created_at, updated_at)
             VALUES (?1, 'bench', ?2, ?3, ?4, 0, 'pending', ?3, ?3, ?3) RETURNING id",
        )
        .bind(format!("r{i}"))
        .bind(format!("U{:03}", i % 100))
        .bind(now)
        .bind(text)
        .fetch_one(&pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE updates SET state = 'sent', updated_at = ?2, finished_at = ?2 WHERE id = ?1",
        )
        .bind(id)
        .bind(Utc::now().timestamp_millis())
        .execute(&pool)
        .await
        .unwrap();
    }
    let rate = QUEUE_ITEMS as f64 / t0.elapsed().as_secs_f64();
    pool.close().await;
    rate
}

async fn queue(table: &mut Table) {
    println!("\n4. queue: {QUEUE_ITEMS} items per run, alternating, three runs each");
    // The footprint section leaves tens of MB of dirty pages (configs, databases) behind;
    // flush them first, so that the checkpoints' fsyncs here do not wait on their writeback.
    sh("sync");
    let dir = tempfile::tempdir().unwrap();
    let mut ours = Vec::new();
    let mut reference = Vec::new();
    // Each loop runs as a spawned task, as every caller of the queue in the daemon does (the
    // scheduler, the workers): a task on a runtime worker wakes the writer task in the same
    // worker's slot, where the main thread's `block_on` would wake another thread every time.
    for round in 0..3 {
        let (r, q) = (
            dir.path().join(format!("ref{round}.db")),
            dir.path().join(format!("queue{round}.db")),
        );
        reference.push(
            tokio::spawn(async move { queue_reference(&r).await })
                .await
                .unwrap(),
        );
        ours.push(
            tokio::spawn(async move { queue_api(&q).await })
                .await
                .unwrap(),
        );
        println!(
            "  round {round}: Queue {:.0}/s, reference {:.0}/s",
            ours[round], reference[round]
        );
    }
    let (q, r) = (median(ours), median(reference));
    table.add(
        "4 queue: enqueue → claim → complete (SQLite file, WAL, synchronous=NORMAL; median of 3)",
        format!("{q:.0} items/s = {:.2} × reference", q / r),
        "≥ 0.5 × reference",
        format!("plain INSERT + UPDATE through sqlx: {r:.0} items/s"),
        verdict(q / r >= 0.5),
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Calendar

/// Issue 12's feed: 2,000 recurring events in about 5 MB.
const CALENDAR_EVENTS: usize = 2_000;
const CALENDAR_BYTES: usize = 5_000_000;
const CALENDAR_RUNS: usize = 5;

/// A calendar with a two-entry map, loaded through the real config loader.
fn bench_calendar() -> slack_statusd::config::Calendar {
    let text = r#"timezone = "Europe/Berlin"
[tokens.alice]
token_env = "SLACK_TOKEN_ALICE"

[[calendars]]
name = "work"
token = "alice"
url = "work.ics"

[[calendars.map]]
summary = "(?i)review|planning"
status_text = "{summary} until {end:%H:%M}"
status_emoji = ":red_circle:"

[[calendars.map]]
busy = ["busy", "tentative"]
status_text = "In a meeting"
status_emoji = ":spiral_calendar_pad:"
"#;
    match slack_statusd::config::load_str(Path::new("/etc/slack-statusd/config.toml"), text) {
        Ok(c) => c.calendars[0].clone(),
        Err(e) => panic!(
            "the bench's calendar config does not load: {:#?}",
            e.problems
        ),
    }
}

/// Seconds of `f`, median of [`CALENDAR_RUNS`], and what its last run returned.
fn timed<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..CALENDAR_RUNS {
        let t0 = Instant::now();
        let out = f();
        times.push(t0.elapsed().as_secs_f64());
        last = Some(out);
    }
    (median(times), last.expect("at least one run"))
}

fn calendar(table: &mut Table) {
    use slack_statusd::calendar::{expand, firings, parse};

    let now = Utc::now();
    let feed = calendar_feed::generate(now, CALENDAR_EVENTS, CALENDAR_BYTES);
    let bytes = &feed.bytes;
    println!(
        "\n5. calendar: {:.1} MB feed, {} masters, {} overrides, {} EXDATEs; median of {CALENDAR_RUNS}",
        bytes.len() as f64 / 1e6,
        feed.masters,
        feed.overrides,
        feed.exdates
    );
    let cal = bench_calendar();
    let (from, to) = (now, now + TimeDelta::days(14));
    let zone = cal.timezone;

    let (floor, parsed) = timed(|| parse(bytes));
    let (with_expand, expansion) = timed(|| {
        let parsed = parse(bytes);
        expand(&parsed.events, from, to, zone, &cal.email)
    });
    let (with_firings, wanted) = timed(|| {
        let parsed = parse(bytes);
        let expansion = expand(&parsed.events, from, to, zone, &cal.email);
        firings(&expansion.occurrences, &cal, now).len()
    });
    let (expand_alone, _) = timed(|| {
        expand(&parsed.events, from, to, zone, &cal.email)
            .occurrences
            .len()
    });
    println!(
        "  parse {floor:.3} s ({} events, {} warnings); expand alone {expand_alone:.3} s \
         ({} occurrences, {} warnings); firings {wanted}",
        parsed.events.len(),
        parsed.warnings.len(),
        expansion.occurrences.len(),
        expansion.warnings.len()
    );
    let feed_what = format!(
        "{:.1} MB, {} events ({} overrides)",
        bytes.len() as f64 / 1e6,
        parsed.events.len(),
        feed.overrides
    );
    table.add(
        &format!(
            "5a calendar: parse + expand over 14 days ({feed_what}; median of {CALENDAR_RUNS})"
        ),
        format!(
            "{with_expand:.3} s, {} occurrences (expand alone {expand_alone:.3} s)",
            expansion.occurrences.len()
        ),
        "≤ 1 s",
        format!("parse alone: {floor:.3} s ({:.2}×)", with_expand / floor),
        verdict(with_expand <= 1.0),
    );
    table.add(
        "5b calendar: parse + expand + timeline and firings (two-entry map)",
        format!("{with_firings:.3} s, {wanted} firings"),
        "—",
        format!("parse + expand: {with_expand:.3} s"),
        "—".to_string(),
    );
}

/// Calendars and events per calendar of the idle-memory figure (issue 12).
const IDLE_CALENDARS: usize = 10;
const IDLE_EVENTS: usize = 200;

/// The idle daemon with 10 calendars of 200 events each, polling every 5 minutes, their feeds
/// served over HTTP on 127.0.0.1: VmRSS once every calendar has been fetched and applied,
/// against the same daemon with no calendar (the floor). The statuses go to the fake Slack:
/// at the unreachable `api_url` of [`HEADER`], the event running now would be retried through
/// the whole idle spell, and the daemon measured would not be idle.
async fn calendar_idle(table: &mut Table) {
    use axum::extract::Path as UrlPath;
    println!(
        "\n5c. calendar idle: {IDLE_CALENDARS} calendars × {IDLE_EVENTS} events, poll 5m, after {} s idle",
        IDLE.as_secs()
    );
    let now = Utc::now();
    let feeds: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..IDLE_CALENDARS)
            .map(|_| calendar_feed::generate(now, IDLE_EVENTS, 100_000).bytes)
            .collect(),
    );
    let served = feeds.clone();
    let app = axum::Router::new().route(
        "/cal/{n}",
        axum::routing::get(move |UrlPath(n): UrlPath<usize>| {
            let feeds = served.clone();
            async move { feeds[n].clone() }
        }),
    );
    let addr = common::serve_router(app).await;

    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-bench"]).await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "database = \"queue.db\"\napi_url = {:?}\ntimezone = \"UTC\"\n\
         [tokens.me]\ntoken_env = \"BENCH_CAL_TOKEN\"\n",
        slack.api_url()
    );
    let mut with = base.clone();
    for n in 0..IDLE_CALENDARS {
        write!(
            with,
            "[[calendars]]\nname = \"cal{n}\"\ntoken = \"me\"\nurl = \"http://{addr}/cal/{n}\"\n\
             poll = \"5m\"\n[[calendars.map]]\nstatus_text = \"{{summary}}\"\n"
        )
        .unwrap();
    }
    let envs = [("BENCH_CAL_TOKEN", "xoxp-bench")];
    let mut rss = Vec::new();
    for (name, text) in [("floor", &base), ("calendars", &with)] {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        let cfg = sub.join("config.toml");
        write_private(&cfg, text);
        let d = start_daemon(&cfg, &envs, Duration::from_secs(60)).await;
        let log = d.log.clone();
        let wanted = if name == "floor" { 0 } else { IDLE_CALENDARS };
        wait_for("every calendar fetched", Duration::from_secs(60), || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("calendar fetched")
                .count()
                >= wanted
        })
        .await;
        tokio::time::sleep(IDLE).await;
        let s = sample(d.child.id());
        println!(
            "  {name}: VmRSS {:.1} MB (RssAnon {:.1} MB), VmHWM {:.1} MB; {} requests to Slack so far",
            mb(s.rss_kb),
            mb(s.anon_kb),
            mb(s.hwm_kb),
            slack.received().len()
        );
        rss.push(s.rss_kb);
        stop_daemon(d).await;
    }
    table.add(
        &format!(
            "5c calendar: idle daemon, {IDLE_CALENDARS} calendars × {IDLE_EVENTS} events, poll 5m"
        ),
        format!("VmRSS {:.1} MB", mb(rss[1])),
        "< 20 MB",
        format!("the same daemon without calendars: {:.1} MB", mb(rss[0])),
        verdict(mb(rss[1]) < 20.0),
    );
}
