//! Secrets: a recognisable token goes through every error path of the real binary — refused
//! by Slack, rate-limited, failing transiently, in a broken config, missing — and must appear
//! in no line of output (logs at `trace` included) and nowhere in the database files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{spawn_daemon, FakeSlack, Scripted, Setup};
use slack_statusd::queue::{Queue, State};

const CANARY: &str = "xoxp-SECRET-CANARY-123";
/// Any of these in the output is a leak, even of part of the token.
const NEEDLES: &[&str] = &[CANARY, "SECRET-CANARY"];

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for needle in NEEDLES {
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            panic!("{what} leaks the token: {line}");
        }
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{what} holds the token"
        );
    }
}

/// Run the binary to completion; killed after 10 s (a `run` that unexpectedly starts).
fn cli(cfg: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::bin());
    cmd.arg("--config")
        .arg(cfg)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    // A watchdog kills the child unless it is told within 10 s that the child has exited;
    // the pipes are read meanwhile, so a chatty child never blocks on a full pipe.
    let (exited, watch) = std::sync::mpsc::channel::<()>();
    let pid = child.id().to_string();
    let watchdog = std::thread::spawn(move || {
        if watch.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = exited.send(());
    watchdog.join().unwrap();
    out
}

fn assert_output_clean(what: &str, out: &Output) {
    assert_clean(&format!("{what} (stdout)"), &out.stdout);
    assert_clean(&format!("{what} (stderr)"), &out.stderr);
}

/// The database's files and their bytes. The WAL is read before the main file: a checkpoint
/// by the test's own last connection may move pages from one to the other (and delete the
/// WAL) in between, and this order sees them either way.
fn db_files(db: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    ["-wal", "-shm", ".lock", ""]
        .iter()
        .filter_map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            let p = PathBuf::from(p);
            std::fs::read(&p).ok().map(|bytes| (p, bytes))
        })
        .collect()
}

async fn wait_rows(db: &Path, what: &str, cond: impl Fn(&[slack_statusd::queue::Update]) -> bool) {
    common::wait_until(what, Duration::from_secs(15), || async {
        let rows = common::rows(db).await;
        cond(&rows)
            .then_some(())
            .ok_or_else(|| format!("{rows:#?}"))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_appears_in_no_log_and_nowhere_in_the_database() {
    // The fake does not know the canary: after the scripted faults it answers invalid_auth.
    let slack = FakeSlack::start(10, 30, Duration::from_secs(60), &["xoxp-other"]).await;
    slack.script(
        CANARY,
        vec![
            Scripted::Reply(429, None, r#"{"ok":false,"error":"ratelimited"}"#.into()),
            Scripted::Reply(
                200,
                Some("1".into()),
                r#"{"ok":false,"error":"ratelimited"}"#.into(),
            ),
            Scripted::Reply(500, None, "boom".into()),
            Scripted::Reply(
                503,
                None,
                r#"{"ok":false,"error":"service_unavailable"}"#.into(),
            ),
            Scripted::Reply(200, None, r#"{"ok":false,"error":"internal_error"}"#.into()),
            Scripted::Reply(200, None, "<html>not json</html>".into()),
            Scripted::CloseConnection,
            Scripted::Reply(200, None, r#"{"ok":false,"error":"user_not_found"}"#.into()),
        ],
    );
    let setup = Setup::new(
        &slack,
        // One request at a time: the script's faults then meet the rows in order, so that
        // invalid_auth comes while a row is still pending, to be held.
        "[retry]\nmax_attempts = 20\ninitial_backoff = \"20ms\"\nmax_backoff = \"50ms\"\n\
         [limits]\nin_flight = 1\n\
         [tokens.canary]\ntoken_env = \"CANARY_TOKEN\"\n",
    );
    let (cfg, db, dir) = (setup.cfg.clone(), setup.db(), &setup.dir);
    Queue::open(&db, true).await.unwrap().close().await;
    let envs = [("CANARY_TOKEN", CANARY)];
    for user in ["U1", "U2", "U3"] {
        let out = cli(
            &cfg,
            &["set", "--token", "canary", "--user", user, "--text", "hi"],
            &envs,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_output_clean("set", &out);
    }

    // Run 1, logging at trace: every fault, then a permanent error, then invalid_auth, which
    // holds the rest. Killed with SIGKILL, so the WAL stays as it was.
    let log1 = dir.path().join("trace.log");
    let trace = [("CANARY_TOKEN", CANARY), ("RUST_LOG", "trace")];
    let mut child = spawn_daemon(&cfg, &log1, &trace);
    wait_rows(
        &db,
        "a permanent failure, invalid_auth and a held row",
        |rows| {
            let failed = |e: &str| {
                rows.iter()
                    .any(|r| r.state == State::Failed && r.last_error.as_deref() == Some(e))
            };
            failed("user_not_found")
                && failed("invalid_auth")
                && rows.iter().any(|r| r.state == State::Held)
        },
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let statuses: Vec<u16> = slack.received().iter().map(|r| r.status).collect();
    assert!(
        statuses.len() >= 9,
        "every scripted fault was met: {statuses:?}"
    );
    let files = db_files(&db);
    assert!(files.iter().any(|(p, _)| p == &db));
    for (path, bytes) in files {
        assert_clean(&format!("{} after SIGKILL", path.display()), &bytes);
    }

    // Run 2, default level: the held row is released at start, refused again, and the daemon
    // stops cleanly.
    let log2 = dir.path().join("info.log");
    let mut child = spawn_daemon(&cfg, &log2, &envs);
    let refused = slack.received().len();
    common::wait_for(
        "the held row refused again",
        Duration::from_secs(10),
        || slack.received().len() > refused,
    )
    .await;
    common::stop(&mut child).await;

    let trace_log = std::fs::read(&log1).unwrap();
    assert!(
        String::from_utf8_lossy(&trace_log).contains("TRACE"),
        "the first run really logged at trace"
    );
    assert_clean("the trace log", &trace_log);
    assert_clean("the info log", &std::fs::read(&log2).unwrap());
    for args in [
        &["queue"][..],
        &["queue", "--json"],
        &["queue", "failed", "--json"],
    ] {
        let out = cli(&cfg, args, &envs);
        assert!(out.status.success());
        assert_output_clean(&format!("{args:?}"), &out);
    }
    for (path, bytes) in db_files(&db) {
        assert_clean(&path.display().to_string(), &bytes);
    }
    // The requests did carry it: the test would notice a token that never reached Slack.
    assert!(slack.received().iter().all(|r| r.token == CANARY));
}

#[test]
fn no_config_error_quotes_an_inline_token() {
    let t = CANARY;
    let cases = [
        (
            "an unknown key beside it",
            format!("[tokens.me]\ntoken = \"{t}\"\nbogus = 1\n"),
        ),
        (
            "two sources",
            format!("[tokens.me]\ntoken = \"{t}\"\ntoken_env = \"X\"\n"),
        ),
        ("a list instead of a string", format!("[tokens.me]\ntoken = [\"{t}\"]\n")),
        ("a table instead of a string", format!("[tokens.me]\ntoken = {{ v = \"{t}\" }}\n")),
        (
            "the value used as a rule's token name",
            format!(
                "[tokens.me]\ntoken_env = \"X\"\n[[rules]]\nname = \"r\"\ntoken = \"{t}\"\n\
                 at = \"09:00\"\nstatus_text = \"x\"\nstatus_emoji = \":x:\"\n"
            ),
        ),
        ("the value as a token's name", format!("[tokens.\"{t}\"]\ntoken_env = \"X\"\n")),
        ("the value as token_file", format!("[tokens.me]\ntoken_file = \"{t}\"\n")),
        ("the value as token_env", format!("[tokens.me]\ntoken_env = \"{t}\"\n")),
        ("at the top level", format!("token = \"{t}\"\n")),
        ("as a rule's user", format!("[tokens.me]\ntoken_env = \"X\"\n[[rules]]\nname = \"r\"\ntoken = \"me\"\nuser = \"{t}\"\nat = \"25:00\"\nstatus_text = \"x\"\nstatus_emoji = \":x:\"\n")),
        (
            "a TOML syntax error after it",
            format!("[tokens.me]\ntoken = \"{t}\"\nbroken = \n"),
        ),
        (
            "an unterminated string",
            format!("[tokens.me]\ntoken = \"{t}\n"),
        ),
        (
            "a duplicate key",
            format!("[tokens.me]\ntoken = \"{t}\"\ntoken = \"{t}\"\n"),
        ),
        (
            "a bare value",
            format!("[tokens.me]\ntoken = {t}\n"),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let mut leaks = Vec::new();
    for (what, text) in &cases {
        let text = format!("database = \"q.db\"\napi_url = \"http://127.0.0.1:9/api\"\n{text}");
        std::fs::write(&cfg, text).unwrap();
        let valid = cli(&cfg, &["check"], &[]).status.success();
        for args in [&["check"][..], &["preview"], &["run"], &["queue"]] {
            if valid && args == ["run"] {
                continue; // it would start; the other cases cover run's config errors
            }
            let out = cli(&cfg, args, &[("X", "xoxp-from-env")]);
            let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
            if NEEDLES
                .iter()
                .any(|n| String::from_utf8_lossy(&all).contains(n))
            {
                leaks.push(format!(
                    "{what}, {args:?}:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

#[test]
fn a_missing_token_names_the_variable_not_the_other_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let token_file = dir.path().join("bob.token");
    std::fs::write(&token_file, format!("{CANARY}\n")).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "database = \"queue.db\"\napi_url = \"http://127.0.0.1:9/api\"\n\
             [tokens.alice]\ntoken_env = \"CANARY_SET\"\n\
             [tokens.bob]\ntoken_file = {:?}\n\
             [tokens.carol]\ntoken_env = \"CANARY_MISSING\"\n\
             [tokens.dave]\ntoken_file = {:?}\n",
            token_file.display().to_string(),
            dir.path().join("absent.token").display().to_string()
        ),
    )
    .unwrap();
    let out = cli(&cfg, &["run"], &[("CANARY_SET", CANARY)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("CANARY_MISSING"), "names the variable: {err}");
    assert!(err.contains("absent.token"), "names the file: {err}");
    assert_output_clean("run with missing tokens", &out);
    // With RUST_LOG=trace too.
    let out = cli(
        &cfg,
        &["run"],
        &[("CANARY_SET", CANARY), ("RUST_LOG", "trace")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_output_clean("run with missing tokens at trace", &out);
}
