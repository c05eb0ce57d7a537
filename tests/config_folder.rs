//! The config folder's edge cases, with the real binary: drop-ins that are dangling links,
//! link loops, FIFOs or folders are skipped with a warning naming each (and a FIFO is never
//! opened, so nothing blocks); and a daemon logging at trace into a file inside the folder it
//! watches does not feed itself; and `config.d/` made, renamed away and replaced, or swapped
//! as a symlink while the daemon runs, is watched anew and reloads.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{log_has, wait_exit, wait_for, FakeSlack, Setup};

/// A hard deadline for a command that must not hang.
const DEADLINE: Duration = Duration::from_secs(10);

/// A FIFO at `path`, made with mkfifo(3).
fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system node.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

/// A valid drop-in: one token and one rule that fires every second.
const GOOD: &str = "[tokens.bob]\ntoken_env = \"FOLDER_BOB\"\n\
                    [[rules]]\nname = \"bob-tick\"\ntoken = \"bob\"\ncron = \"* * * * * *\"\n\
                    status_text = \"tick\"\n";

/// The drop-ins that must be skipped with a warning, by file name, and what the warning says.
const SKIPPED: [(&str, &str); 4] = [
    ("dangling.toml", "does not exist"),
    ("loop.toml", "loop"),
    ("fifo.toml", "FIFO"),
    ("folder.toml", "directory"),
];

/// Fill `config.d/` in `setup`'s folder with [`GOOD`] and every entry of [`SKIPPED`].
fn hostile_drop_ins(setup: &Setup) {
    let d = setup.path("config.d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("good.toml"), GOOD).unwrap();
    std::os::unix::fs::symlink(d.join("nowhere.toml"), d.join("dangling.toml")).unwrap();
    std::os::unix::fs::symlink(d.join("loop.toml"), d.join("loop.toml")).unwrap();
    mkfifo(&d.join("fifo.toml"));
    std::fs::create_dir(d.join("folder.toml")).unwrap();
}

/// Whether `text` has a warning line naming drop-in `name` and saying `says`.
fn warns(text: &str, name: &str, says: &str) -> bool {
    text.lines()
        .any(|l| l.to_lowercase().contains("warn") && l.contains(name) && l.contains(says))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_ins_that_are_not_regular_files_are_skipped_with_a_warning_naming_each() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-bob"]).await;
    let setup = Setup::new(&slack, "");
    hostile_drop_ins(&setup);

    // `check`: valid, one warning per skipped entry, and no hang on the FIFO.
    let err = setup.path("check.err");
    let mut child = Command::new(common::bin())
        .arg("--config")
        .arg(&setup.cfg)
        .arg("check")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let code = wait_exit(&mut child, DEADLINE).await;
    let text = std::fs::read_to_string(&err).unwrap();
    assert_eq!(code, Some(0), "{text}");
    for (name, says) in SKIPPED {
        assert!(warns(&text, name, says), "check warns about {name}: {text}");
    }

    // The daemon logs them when it starts, runs the good drop-in, and logs a new one on
    // reload.
    let log = setup.path("daemon.log");
    let mut daemon = setup.spawn("daemon.log", &[("FOLDER_BOB", "xoxp-bob")]);
    setup.wait_started("daemon.log").await;
    let text = std::fs::read_to_string(&log).unwrap();
    for (name, says) in SKIPPED {
        assert!(warns(&text, name, says), "run warns about {name}: {text}");
    }
    wait_for("the good drop-in fires", DEADLINE, || {
        !slack.received().is_empty()
    })
    .await;
    let d = setup.path("config.d");
    std::os::unix::fs::symlink(d.join("gone.toml"), d.join("late.toml")).unwrap();
    wait_for("reload warns about the new link", DEADLINE, || {
        std::fs::read_to_string(&log).is_ok_and(|t| warns(&t, "late.toml", "does not exist"))
    })
    .await;
    wait_for("reloaded", DEADLINE, || log_has(&log, "reloaded")).await;
    common::stop(&mut daemon).await;
}

/// CPU time (user + system) of process `pid` so far, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name in parentheses may hold spaces: count fields after its ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((f[0] + f[1]) * 1000 / ticks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_log_inside_the_watched_folder_does_not_feed_itself() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-bob"]).await;
    let setup = Setup::new(&slack, "");
    std::fs::create_dir(setup.path("config.d")).unwrap();
    let log = setup.path("daemon.log");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let mut child = Command::new(common::bin())
        .arg("--config")
        .arg(&setup.cfg)
        .arg("run")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(appended)
        .spawn()
        .unwrap();
    setup.wait_started("daemon.log").await;

    // Not a speed test: a daemon that feeds itself spends the whole window on the CPU and
    // writes without end; an idle one spends next to nothing. The window is the measurement
    // itself, not a wait for something to happen.
    let (cpu0, size0) = (cpu_time(child.id()), std::fs::metadata(&log).unwrap().len());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu1, size1) = (cpu_time(child.id()), std::fs::metadata(&log).unwrap().len());
    let cpu = cpu1 - cpu0;
    let grown = size1 - size0;
    assert!(cpu < Duration::from_millis(500), "CPU {cpu:?} in 3 s");
    assert!(grown < 64 * 1024, "the log grew by {grown} bytes in 3 s");

    // The watch still works: an edit of the config file reloads.
    setup.write_config(&setup.config_text(&slack, "log_level = \"debug\"\n"));
    wait_for("reloaded after an edit", DEADLINE, || {
        log_has(&log, "reloaded")
    })
    .await;
    common::stop(&mut child).await;
}

/// The main config's body for the `config.d` tests: the token the drop-ins' rules use.
const BOB: &str = "[tokens.bob]\ntoken_env = \"FOLDER_BOB\"\n";

/// A drop-in with one rule named `rule` for `bob`, firing every second.
fn tick(rule: &str) -> String {
    format!(
        "[[rules]]\nname = \"{rule}\"\ntoken = \"bob\"\ncron = \"* * * * * *\"\nstatus_text = \"{rule}\"\n"
    )
}

/// Make the folder `dir` holding the drop-in `file` with rule `rule`.
fn folder_with(dir: &Path, file: &str, rule: &str) {
    std::fs::create_dir(dir).unwrap();
    std::fs::write(dir.join(file), tick(rule)).unwrap();
}

/// How many queue rows rule `rule` has in the database `db`.
async fn rows_of(db: &Path, rule: &str) -> usize {
    common::rows(db)
        .await
        .iter()
        .filter(|u| u.rule.as_deref() == Some(rule))
        .count()
}

/// A fake Slack that knows bob's token, and a folder whose config declares it.
async fn bob_setup() -> (FakeSlack, Setup) {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-bob"]).await;
    let setup = Setup::new(&slack, BOB);
    (slack, setup)
}

/// Start the daemon with bob's token, logging to `daemon.log`, and wait until it has started.
async fn start_bob(setup: &Setup) -> std::process::Child {
    let daemon = setup.spawn("daemon.log", &[("FOLDER_BOB", "xoxp-bob")]);
    setup.wait_started("daemon.log").await;
    daemon
}

/// Wait until rule `rule` has rows in `db`.
async fn wait_fires(db: &Path, rule: &str) {
    let what = format!("rows of {rule}");
    common::wait_until(&what, DEADLINE, || async { rows_of(db, rule).await > 0 }).await;
}

/// How many reloads the daemon logged to `log` so far.
fn reloads(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |t| t.matches("reloaded").count())
}

/// Wait until the daemon logging to `log` has reloaded more than `before` times and rule
/// `rule` has rows in `db`.
async fn wait_reload_with_rows(log: &Path, before: usize, db: &Path, rule: &str) {
    wait_for(&format!("reload number {}", before + 1), DEADLINE, || {
        reloads(log) > before
    })
    .await;
    wait_fires(db, rule).await;
}

/// Write the drop-in `path` with rule `rule`, and wait until the daemon logging to `log` has
/// reloaded once more and that rule has rows in `db`.
async fn write_and_wait_reload(log: &Path, db: &Path, path: &Path, rule: &str) {
    let before = reloads(log);
    std::fs::write(path, tick(rule)).unwrap();
    wait_reload_with_rows(log, before, db, rule).await;
}

/// Wait until rule `new` has two more rows than now, then assert that rule `old`, which the
/// reload removed, got none meanwhile.
async fn assert_replaced(db: &Path, old: &str, new: &str) {
    let old_rows = rows_of(db, old).await;
    let new_rows = rows_of(db, new).await;
    let what = format!("{new} fires twice more");
    common::wait_until(&what, DEADLINE, || async {
        rows_of(db, new).await >= new_rows + 2
    })
    .await;
    assert_eq!(rows_of(db, old).await, old_rows, "{old} stopped firing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_d_made_while_running_is_watched_and_reloads() {
    let (_slack, setup) = bob_setup().await;
    let (log, db) = (setup.path("daemon.log"), setup.db());
    let mut daemon = start_bob(&setup).await;
    assert!(!setup.path("config.d").exists());

    // `mkdir config.d && cp alice.toml config.d/`, at once: the drop-in may be written
    // before the daemon sees the folder.
    let d = setup.path("config.d");
    folder_with(&d, "alice.toml", "alice-tick");
    wait_reload_with_rows(&log, 0, &db, "alice-tick").await;

    // The new folder is watched: a second drop-in, written once the first reload is done,
    // reloads again.
    write_and_wait_reload(&log, &db, &d.join("carol.toml"), "carol-tick").await;
    common::stop(&mut daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_d_renamed_away_and_replaced_reloads_the_new_one() {
    let (_slack, setup) = bob_setup().await;
    let (log, db) = (setup.path("daemon.log"), setup.db());
    let d = setup.path("config.d");
    folder_with(&d, "old.toml", "old-tick");
    let mut daemon = start_bob(&setup).await;
    wait_fires(&db, "old-tick").await;

    // `mv config.d config.d.old`, and a new folder, filled elsewhere, renamed into its place.
    std::fs::rename(&d, setup.path("config.d.old")).unwrap();
    let next = setup.path("config.d.next");
    folder_with(&next, "new.toml", "new-tick");
    std::fs::rename(&next, &d).unwrap();
    wait_reload_with_rows(&log, 0, &db, "new-tick").await;
    assert_replaced(&db, "old-tick", "new-tick").await;

    // The new folder is watched, not the old one that moved away: an edit in it reloads.
    write_and_wait_reload(&log, &db, &d.join("new.toml"), "newer-tick").await;
    common::stop(&mut daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_d_symlink_swapped_atomically_reloads_the_new_target() {
    let (_slack, setup) = bob_setup().await;
    let (log, db) = (setup.path("daemon.log"), setup.db());
    folder_with(&setup.path("v1"), "rules.toml", "v1-tick");
    folder_with(&setup.path("v2"), "rules.toml", "v2-tick");
    let d = setup.path("config.d");
    std::os::unix::fs::symlink("v1", &d).unwrap();
    let mut daemon = start_bob(&setup).await;
    wait_fires(&db, "v1-tick").await;

    // `ln -s v2 config.d.tmp && mv -T config.d.tmp config.d`: one rename swaps the link.
    let tmp = setup.path("config.d.tmp");
    std::os::unix::fs::symlink("v2", &tmp).unwrap();
    std::fs::rename(&tmp, &d).unwrap();
    wait_reload_with_rows(&log, 0, &db, "v2-tick").await;
    assert_replaced(&db, "v1-tick", "v2-tick").await;
    common::stop(&mut daemon).await;
}
