//! Bad input around the config and the database, through the real binary: a database that
//! cannot be written, one held by another process, one from a newer schema, and a config that
//! leaks its inline token to other users. Each gives a clear message and exit code 2 (a
//! runtime failure) without damaging the database, or a warning.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{spawn_daemon, wait_exit, wait_for};
use slack_statusd::profile::{Patch, Status};
use slack_statusd::queue::{NewUpdate, Queue, Target};
use sqlx::Connection;

/// A config with one token (from $BAD_INPUT_TOKEN) and no rules, database as given.
fn write_config(dir: &Path, database: &str) -> PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = {database:?}\napi_url = \"http://127.0.0.1:9/api\"\n\
             [tokens.me]\ntoken_env = \"BAD_INPUT_TOKEN\"\n"
        ),
    )
    .unwrap();
    cfg
}

fn cli(cfg: &Path, args: &[&str]) -> Output {
    Command::new(common::bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env("BAD_INPUT_TOKEN", "xoxp-bad-input")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `run` must not keep running: give it a deadline, then read what it said.
async fn run_briefly(cfg: &Path, dir: &Path) -> (Option<i32>, String) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let log = dir.join(format!("run-{}.log", RUNS.fetch_add(1, Ordering::SeqCst)));
    let mut child = spawn_daemon(cfg, &log, &[("BAD_INPUT_TOKEN", "xoxp-bad-input")]);
    let code = wait_exit(&mut child, Duration::from_secs(20)).await;
    (code, std::fs::read_to_string(&log).unwrap())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn new_db_with_a_row(db: &Path) {
    let q = Queue::open(db, true).await.unwrap();
    let now = Utc::now();
    q.enqueue(
        &NewUpdate {
            rule: None,
            target: Target {
                token: "me".into(),
                user: None,
            },
            fire_at: now,
            patch: Patch {
                status: Some(Status {
                    text: "keep me".into(),
                    emoji: ":lock:".into(),
                    expiration: 0,
                }),
                ..Patch::default()
            },
            respect_manual: false,
            restore: false,
        },
        now,
    )
    .await
    .unwrap();
    q.close().await;
}

/// The bytes of the database and its WAL/SHM files (absent files as `None`).
fn snapshot(db: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            (suffix.to_string(), std::fs::read(PathBuf::from(p)).ok())
        })
        .collect()
}

/// The main file is byte for byte the same. A process that exits while sqlx closes its
/// connections may leave an empty -wal (and its -shm index) behind: no page is in it, so
/// nothing was written.
fn assert_unchanged(before: &[(String, Option<Vec<u8>>)], after: &[(String, Option<Vec<u8>>)]) {
    assert!(after[0].1 == before[0].1, "the database file changed");
    let wal = after[1].1.as_ref().map_or(0, Vec::len);
    assert!(
        wal <= 32,
        "the -wal holds {wal} bytes: something was written"
    );
}

#[tokio::test]
async fn a_database_path_under_a_regular_file_exits_2_naming_it() {
    // Tests run as root, so permission bits do not stop a write; a path whose parent is a
    // regular file cannot be created by anyone.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notadir"), "I am a file").unwrap();
    let cfg = write_config(dir.path(), "notadir/queue.db");
    let (code, log) = run_briefly(&cfg, dir.path()).await;
    assert_eq!(code, Some(2), "run: {log}");
    assert!(log.contains("notadir/queue.db"), "names the path: {log}");
    for args in [&["queue"][..], &["set", "--token", "me", "--text", "x"]] {
        let out = cli(&cfg, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("notadir/queue.db"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notadir")).unwrap(),
        "I am a file",
        "the file in the way is untouched"
    );
}

#[tokio::test]
async fn a_directory_where_the_database_should_be_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("queue.db")).unwrap();
    let cfg = write_config(dir.path(), "queue.db");
    let (code, log) = run_briefly(&cfg, dir.path()).await;
    assert_eq!(code, Some(2), "run: {log}");
    assert!(log.contains("queue.db"), "names the path: {log}");
    let out = cli(&cfg, &["queue"]);
    assert_eq!(out.status.code(), Some(2), "queue: {}", stderr(&out));
    assert!(
        std::fs::read_dir(dir.path().join("queue.db"))
            .unwrap()
            .next()
            .is_none(),
        "nothing was written into the directory"
    );
}

/// A folder made read-only for the life of this guard, in a way that holds for root too.
enum ReadOnly {
    /// Bind-mounted read-only onto itself: the kernel refuses every write with `EROFS`,
    /// whatever the caller's capabilities (root's CAP_DAC_OVERRIDE ignores file modes, so CI,
    /// which runs as root, needs this).
    Mount(PathBuf),
    /// Mode 0555 on the folder and 0444 on the files: enough for a user without
    /// CAP_DAC_OVERRIDE, who may not mount.
    Modes(PathBuf),
}

impl ReadOnly {
    /// Make `dir` read-only, by a bind mount if the kernel allows it, else by file modes if
    /// they bind the caller; `Err` says why neither does.
    fn make(dir: &Path) -> Result<ReadOnly, String> {
        let mount = |args: &[&str]| {
            let out = Command::new("mount").args(args).arg(dir).arg(dir).output();
            match out {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        let refused = match mount(&["--bind"]) {
            Ok(()) => {
                // From here on the guard unmounts, even if the remount fails.
                let guard = ReadOnly::Mount(dir.to_path_buf());
                match mount(&["-o", "remount,ro,bind"]) {
                    Ok(()) => return Ok(guard),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let guard = ReadOnly::Modes(dir.to_path_buf());
        if std::fs::File::create(dir.join("probe")).is_ok() {
            return Err(format!(
                "mounting was refused ({refused}) and file modes do not bind this user"
            ));
        }
        Ok(guard)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        match self {
            ReadOnly::Mount(dir) => {
                let umounted = Command::new("umount").arg(&*dir).status();
                if !umounted.is_ok_and(|s| s.success()) {
                    // Busy (a process still holds a file): detach it, the folder goes anyway.
                    let _ = Command::new("umount").arg("-l").arg(&*dir).status();
                }
            }
            ReadOnly::Modes(dir) => {
                let _ = std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
}

/// Wait until sqlx has closed our connections on its worker thread: the last close
/// checkpoints and removes the WAL, so what follows sees a quiet database.
async fn wait_quiet(db: &Path) {
    wait_for("our connections closed", Duration::from_secs(5), || {
        snapshot(db)[1..].iter().all(|(_, bytes)| bytes.is_none())
    })
    .await;
}

#[tokio::test]
async fn a_read_only_database_exits_2_naming_it_and_is_left_unchanged() {
    // The folder of a system service's state, read-only (a ProtectSystem= unit, a mount gone
    // read-only after disk errors): `run` and `set` must refuse, name the database, and write
    // nothing — as root too.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("queue.db");
    new_db_with_a_row(&db).await;
    wait_quiet(&db).await;
    let cfg = write_config(dir.path(), "data/queue.db");
    let before = snapshot(&db);
    let _read_only = match ReadOnly::make(&data) {
        Ok(guard) => guard,
        Err(why) => {
            eprintln!(
                "SKIPPED a_read_only_database_exits_2_naming_it_and_is_left_unchanged: {why}"
            );
            return;
        }
    };
    assert!(
        std::fs::OpenOptions::new().append(true).open(&db).is_err(),
        "the test's own write went through: the folder is not read-only"
    );
    let (code, log) = run_briefly(&cfg, dir.path()).await;
    assert_eq!(code, Some(2), "run: {log}");
    assert!(
        log.contains(&db.display().to_string()),
        "run names the database: {log}"
    );
    let out = cli(&cfg, &["set", "--token", "me", "--text", "x"]);
    assert_eq!(out.status.code(), Some(2), "set: {}", stderr(&out));
    assert!(
        stderr(&out).contains(&db.display().to_string()),
        "set names the database: {}",
        stderr(&out)
    );
    assert_unchanged(&before, &snapshot(&db));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_database_exits_2_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "queue.db");
    let log = dir.path().join("first.log");
    let mut first = spawn_daemon(&cfg, &log, &[("BAD_INPUT_TOKEN", "xoxp-bad-input")]);
    wait_for("the first daemon started", Duration::from_secs(10), || {
        common::log_has(&log, "started")
    })
    .await;
    assert!(dir.path().join("queue.db.lock").exists());
    let (code, second) = run_briefly(&cfg, dir.path()).await;
    assert_eq!(code, Some(2), "second run: {second}");
    assert!(
        second.contains(&format!("pid {}", first.id())),
        "names the holder's pid {}: {second}",
        first.id()
    );
    assert!(second.contains("queue.db"), "names the database: {second}");
    common::stop(&mut first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_exits_2_after_the_busy_timeout_intact() {
    // Another program holds a write transaction for longer than the 10 s busy timeout.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    new_db_with_a_row(&db).await;
    let cfg = write_config(dir.path(), "queue.db");
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();

    let started = Instant::now();
    let cfg2 = cfg.clone();
    let set =
        tokio::task::spawn_blocking(move || cli(&cfg2, &["set", "--token", "me", "--text", "x"]));
    let (code, log) = run_briefly(&cfg, dir.path()).await;
    let set = set.await.unwrap();
    eprintln!("both gave up after {:?}", started.elapsed());
    assert_eq!(code, Some(2), "run: {log}");
    assert!(log.contains("locked"), "run says why: {log}");
    assert_eq!(set.status.code(), Some(2), "set: {}", stderr(&set));
    assert!(
        stderr(&set).contains("locked"),
        "set says why: {}",
        stderr(&set)
    );
    assert!(
        stderr(&set).contains(&db.display().to_string()),
        "set names the database: {}",
        stderr(&set)
    );

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();
    let q = Queue::open(&db, false).await.unwrap();
    let rows = q.list(&[]).await.unwrap();
    q.close().await;
    assert_eq!(rows.len(), 1, "nothing added or lost");
    assert_eq!(rows[0].patch.status.as_ref().unwrap().text, "keep me");
}

#[tokio::test]
async fn a_database_from_a_newer_schema_exits_2_and_is_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    new_db_with_a_row(&db).await;
    {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99991231000000, 'from a future slack-statusd', 1, x'00', 0)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    }
    let cfg = write_config(dir.path(), "queue.db");
    wait_quiet(&db).await;
    let before = snapshot(&db);
    assert!(before[0].1.is_some());

    let (code, log) = run_briefly(&cfg, dir.path()).await;
    assert_eq!(code, Some(2), "run: {log}");
    assert!(log.contains("newer schema"), "run says why: {log}");
    assert!(log.contains("queue.db"), "run names the file: {log}");
    for args in [
        &["queue"][..],
        &["queue", "--json"],
        &["set", "--token", "me", "--text", "x"],
    ] {
        let out = cli(&cfg, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("newer schema"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_unchanged(&before, &snapshot(&db));
}

#[test]
fn a_config_with_an_inline_token_readable_by_others_gets_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "database = \"q.db\"\n[tokens.me]\ntoken = \"xoxp-inline-warning-canary\"\n",
    )
    .unwrap();
    for (mode, warns) in [(0o644, true), (0o640, true), (0o604, true), (0o600, false)] {
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = cli(&cfg, &["check"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "mode {mode:o}: {err}");
        assert_eq!(
            err.contains("warning") && err.contains("inline token"),
            warns,
            "mode {mode:o}: {err}"
        );
        if warns {
            assert!(err.contains("chmod 600"), "says what to do: {err}");
            assert!(err.contains("config.toml"), "names the file: {err}");
        }
        assert!(
            !err.contains("canary") && !String::from_utf8_lossy(&out.stdout).contains("canary")
        );
    }
    // Not for a token from the environment, whatever the mode.
    std::fs::write(
        &cfg,
        "database = \"q.db\"\n[tokens.me]\ntoken_env = \"X\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli(&cfg, &["check"]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn a_drop_in_with_an_inline_token_readable_by_others_gets_a_warning_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "database = \"q.db\"\n").unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir(dir.path().join("config.d")).unwrap();
    let drop_in = dir.path().join("config.d/alice.toml");
    std::fs::write(&drop_in, "[tokens.alice]\ntoken = \"xoxp-drop-in\"\n").unwrap();
    std::fs::set_permissions(&drop_in, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli(&cfg, &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning") && err.contains("alice.toml"),
        "names the drop-in: {err}"
    );
}

#[tokio::test]
async fn an_error_message_states_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("queue.db")).unwrap();
    let cfg = write_config(dir.path(), "queue.db");
    let out = cli(&cfg, &["queue"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(
        err.matches("unable to open database file").count(),
        1,
        "the cause once: {err}"
    );
}
