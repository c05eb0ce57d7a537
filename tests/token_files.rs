//! Token files that never end: `/dev/zero`, a FIFO without a writer, a 1 GB sparse file and a
//! 5 KiB file. `check` and `run` of the real binary refuse each with an error naming the
//! token (exit 1) within a hard deadline and without growing; a reload to one is rejected,
//! the daemon stays on its old config and still stops promptly on SIGTERM.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{log_has, wait_exit, wait_for, FakeSlack, Setup};

/// A hard deadline for a command that must not hang.
const DEADLINE: Duration = Duration::from_secs(10);

/// The peak resident set a refusing `run` may reach (the old code reached gigabytes).
const MAX_HWM_KB: u64 = 50 * 1024;

/// What a token file that must be refused mentions in the error.
struct Bad {
    /// For assertion messages.
    what: &'static str,
    /// The file.
    path: PathBuf,
    /// A word the error must contain.
    says: &'static str,
}

/// A FIFO at `path`, made with mkfifo(3).
fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system node.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

/// Every kind of endless or oversized token file, made in `dir`.
fn bad_files(dir: &Path) -> Vec<Bad> {
    let fifo = dir.join("fifo.token");
    mkfifo(&fifo);
    let huge = dir.join("huge.token");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let five_k = dir.join("5k.token");
    let mut text = String::from("xoxp-canary-5k-token\n");
    text.push_str(&"#".repeat(5 * 1024));
    std::fs::write(&five_k, text).unwrap();
    vec![
        Bad {
            what: "/dev/zero",
            path: PathBuf::from("/dev/zero"),
            says: "character device",
        },
        Bad {
            what: "a FIFO",
            path: fifo,
            says: "FIFO",
        },
        Bad {
            what: "a 1 GB sparse file",
            path: huge,
            says: "larger than 4096 bytes",
        },
        Bad {
            what: "a 5 KiB file",
            path: five_k,
            says: "larger than 4096 bytes",
        },
    ]
}

/// A config body with one token `alice` read from `path` and a rule firing every second.
fn body(path: &Path) -> String {
    format!(
        "[tokens.alice]\ntoken_file = {:?}\n\
         [[rules]]\nname = \"tick\"\ntoken = \"alice\"\ncron = \"* * * * * *\"\n\
         status_text = \"tick\"\n",
        path.to_str().unwrap()
    )
}

/// Run the binary with `args` and wait at most [`DEADLINE`]; returns (exit code, stderr, the
/// largest VmHWM seen while it ran, in kB).
async fn run_bounded(setup: &Setup, args: &[&str]) -> (Option<i32>, String, u64) {
    let err = setup.path("stderr.log");
    let mut child = Command::new(common::bin())
        .arg("--config")
        .arg(&setup.cfg)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut hwm = 0;
    let end = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() && Instant::now() < end {
        hwm = hwm.max(vm_hwm_kb(child.id()).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let code = wait_exit(&mut child, Duration::from_millis(100)).await;
    (code, std::fs::read_to_string(&err).unwrap_or_default(), hwm)
}

/// The peak resident set of a process (`VmHWM` in /proc/PID/status), in kB.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_run_refuse_endless_and_oversized_token_files() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-good"]).await;
    let files = tempfile::tempdir().unwrap();
    for bad in bad_files(files.path()) {
        let setup = Setup::new(&slack, &body(&bad.path));
        for cmd in ["check", "run"] {
            let (code, err, hwm) = run_bounded(&setup, &[cmd]).await;
            let what = format!("{cmd} with {}", bad.what);
            assert_eq!(code, Some(1), "{what} exits 1: {err}");
            assert!(
                err.contains("token \"alice\""),
                "{what} names the token: {err}"
            );
            assert!(
                err.contains(bad.says),
                "{what} says why ({}): {err}",
                bad.says
            );
            assert!(
                !err.contains("xoxp-canary"),
                "{what} quotes no value: {err}"
            );
            assert!(hwm < MAX_HWM_KB, "{what}: VmHWM {hwm} kB");
        }
        assert!(!setup.db().exists(), "{}: no database made", bad.what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_check_cannot_find_is_a_warning_only_from_a_shell() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-good"]).await;
    let setup = Setup::new(&slack, "[tokens.alice]\ntoken_file = \"alice.token\"\n");
    let (code, err, _) = run_bounded(&setup, &["check"]).await;
    assert_eq!(code, Some(0), "check from a shell: {err}");
    assert!(
        err.contains("warning: token \"alice\"") && err.contains("alice.token"),
        "warns naming the token and the file: {err}"
    );
    assert!(err.contains("CREDENTIALS_DIRECTORY"), "{err}");

    // As the service's own `check` (ExecReload=), with systemd's directory: an error.
    let creds = tempfile::tempdir().unwrap();
    let check_as_service = || {
        Command::new(common::bin())
            .arg("--config")
            .arg(&setup.cfg)
            .arg("check")
            .env_remove("RUST_LOG")
            .env("CREDENTIALS_DIRECTORY", creds.path())
            .output()
            .unwrap()
    };
    let out = check_as_service();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "check under systemd: {err}");
    assert!(err.contains("token \"alice\""), "{err}");
    // Once the credential is there, it is read and valid.
    std::fs::write(creds.path().join("alice.token"), "xoxp-good\n").unwrap();
    let out = check_as_service();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `run` cannot do without its token.
    let (code, err, _) = run_bounded(&setup, &["run"]).await;
    assert_eq!(code, Some(1), "run: {err}");
    assert!(err.contains("token \"alice\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_to_an_endless_token_file_is_rejected_and_sigterm_still_stops() {
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-good"]).await;
    let files = tempfile::tempdir().unwrap();
    let good = files.path().join("good.token");
    std::fs::write(&good, "xoxp-good\n").unwrap();
    let setup = Setup::new(&slack, &body(&good));
    let log = setup.path("daemon.log");
    let mut child = setup.spawn("daemon.log", &[]);
    setup.wait_started("daemon.log").await;

    for (i, bad) in bad_files(files.path()).iter().enumerate() {
        setup.write_config(&setup.config_text(&slack, &body(&bad.path)));
        wait_for(
            &format!("reload to {} rejected", bad.what),
            DEADLINE,
            || {
                std::fs::read_to_string(&log)
                    .is_ok_and(|s| s.matches("reload rejected").count() > i)
            },
        )
        .await;
        let before = slack.received().len();
        wait_for(
            &format!("still firing after {}", bad.what),
            DEADLINE,
            || slack.received().len() > before,
        )
        .await;
        assert!(log_has(&log, bad.says), "the log says why: {}", bad.what);
    }
    // The good file itself swapped for a FIFO: the edit back to it and a SIGHUP both fail.
    std::fs::remove_file(&good).unwrap();
    mkfifo(&good);
    setup.write_config(&setup.config_text(&slack, &body(&good)));
    common::signal(&child, "HUP");
    wait_for("SIGHUP to a FIFO rejected", DEADLINE, || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.matches("reload rejected").count() > 5)
    })
    .await;
    assert!(!log_has(&log, "xoxp-canary"), "no value in the log");

    let asked = Instant::now();
    common::stop(&mut child).await;
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopped promptly: {:?}",
        asked.elapsed()
    );
}
