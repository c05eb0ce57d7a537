//! The command line of the real binary: `check`, `preview`, and the exit codes of SPEC §2.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(common::bin())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example() -> String {
    format!("{}/config/example.toml", env!("CARGO_MANIFEST_DIR"))
}

const COFFEE: &str = r#"timezone = "Europe/Berlin"

[tokens.alice]
token_env = "SLACK_TOKEN_ALICE"

[[rules]]
name = "morning-coffee"
token = "alice"
user = "U0123ABCD"
at = "09:00"
days = "mon-fri"
status_text = "Coffee"
status_emoji = ":coffee:"
expire_after = "2h"
"#;

fn write_config(dir: &Path, text: &str) -> String {
    let p = dir.join("config.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn check_accepts_the_example_and_the_template() {
    for file in [
        example(),
        format!("{}/config/config.toml", env!("CARGO_MANIFEST_DIR")),
    ] {
        let o = run(&["--config", &file, "check"]);
        assert_eq!(o.status.code(), Some(0), "{file}: {}", stderr(&o));
        assert!(stdout(&o).contains("valid"), "{}", stdout(&o));
    }
}

#[test]
fn check_reports_every_problem_with_file_line_and_column_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let text = COFFEE
        .replace(
            "status_text = \"Coffee\"",
            &format!("status_text = \"{}\"", "x".repeat(131)),
        )
        .replace("days = \"mon-fri\"", "days = \"mon-fry\"");
    let cfg = write_config(dir.path(), &text);
    let o = run(&["--config", &cfg, "check"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("config.toml:11:8:"),
        "days problem located: {err}"
    );
    assert!(err.contains("config.toml:12:15: rule \"morning-coffee\": status_text is 131 characters; Slack allows at most 100"), "{err}");
}

#[test]
fn preview_prints_the_next_firings_in_the_rules_zone() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), COFFEE);
    // Friday 2026-11-20, 10:00 Berlin: next are Monday and Tuesday 09:00.
    let o = run(&[
        "--config",
        &cfg,
        "preview",
        "--count",
        "2",
        "--from",
        "2026-11-20T10:00:00+01:00",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "2026-11-23T09:00:00+01:00  morning-coffee  alice/U0123ABCD  :coffee: Coffee  expires 2026-11-23T11:00:00+01:00\n\
         2026-11-24T09:00:00+01:00  morning-coffee  alice/U0123ABCD  :coffee: Coffee  expires 2026-11-24T11:00:00+01:00\n"
    );
    let o = run(&[
        "--config",
        &cfg,
        "preview",
        "--count",
        "1",
        "--json",
        "--from",
        "2026-11-20T10:00:00+01:00",
    ]);
    let line: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(line["at"], "2026-11-23T09:00:00+01:00");
    assert_eq!(line["rule"], "morning-coffee");
    assert_eq!(line["token"], "alice");
    assert_eq!(line["user"], "U0123ABCD");
    assert_eq!(line["expires"], "2026-11-23T11:00:00+01:00");
    let o = run(&["--config", &cfg, "preview", "--from", "yesterday"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("RFC 3339"));
}

#[test]
fn set_and_queue_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &format!("database = \"q.db\"\n{COFFEE}"));
    for args in [
        vec!["queue"],
        vec!["queue", "failed", "--json"],
        vec!["set", "--token", "alice", "--text", "hi"],
    ] {
        let mut full = vec!["--config", cfg.as_str()];
        full.extend(args.iter());
        let o = run(&full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("q.db"),
            "names the path: {}",
            stderr(&o)
        );
        assert!(!dir.path().join("q.db").exists());
    }
}

#[test]
fn a_postgres_database_is_checked_but_not_yet_opened_and_never_shown_whole() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("database = \"postgres://statusd@db.internal/secret-db-name\"\n{COFFEE}"),
    );
    let o = run(&["--config", &cfg, "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for args in [
        vec!["queue"],
        vec!["status"],
        vec!["set", "--token", "alice", "--text", "hi"],
    ] {
        let mut full = vec!["--config", cfg.as_str()];
        full.extend(args.iter());
        let o = run(&full);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(
                "database postgres://db.internal: this build keeps its queue in SQLite only"
            ),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("secret-db-name") && !err.contains("statusd@"),
            "{err}"
        );
    }
    let o = Command::new(common::bin())
        .args(["--config", &cfg, "run"])
        .env("SLACK_TOKEN_ALICE", "xoxp-1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("SQLite only"), "{}", stderr(&o));
}

#[test]
fn a_missing_config_is_an_input_error() {
    let o = run(&["--config", "/nonexistent/slack-statusd.toml", "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/slack-statusd.toml"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_without_its_token_exits_1_and_says_which_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &format!("database = \"q.db\"\n{COFFEE}"));
    let o = Command::new(common::bin())
        .args(["--config", &cfg, "run"])
        .env_remove("SLACK_TOKEN_ALICE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("SLACK_TOKEN_ALICE"), "{}", stderr(&o));
}

#[test]
fn a_usage_error_exits_1_and_help_exits_0() {
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    for section in ["FILES:", "ENVIRONMENT:", "SIGNALS:", "EXIT STATUS:"] {
        assert!(stdout(&o).contains(section), "--help has {section}");
    }
}

#[tokio::test]
async fn a_first_run_from_a_shell_creates_its_state_folder() {
    let home = tempfile::tempdir().unwrap();
    let cfg = write_config(home.path(), "[tokens.me]\ntoken_env = \"FIRST_RUN\"\n");
    let mut child = Command::new(common::bin())
        .args(["--config", &cfg, "run"])
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("STATE_DIRECTORY")
        .env("FIRST_RUN", "xoxp-x")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let db = home.path().join(".local/state/slack-statusd/queue.db");
    common::wait_for(
        "the default database",
        std::time::Duration::from_secs(10),
        || db.exists(),
    )
    .await;
    common::signal(&child, "TERM");
    assert_eq!(
        common::wait_exit(&mut child, std::time::Duration::from_secs(10)).await,
        Some(0)
    );
}

#[tokio::test]
async fn under_journald_logs_carry_no_timestamp_and_never_colours() {
    for journald in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_config(
            dir.path(),
            "database = \"q.db\"\n[tokens.me]\ntoken_env = \"LOG_ME\"\n",
        );
        let log = dir.path().join("daemon.log");
        let mut cmd = Command::new(common::bin());
        cmd.args(["--config", &cfg, "run"])
            .env("LOG_ME", "xoxp-x")
            .env_remove("RUST_LOG");
        cmd.stderr(std::fs::File::create(&log).unwrap());
        if journald {
            cmd.env("JOURNAL_STREAM", "8:12345");
        } else {
            cmd.env_remove("JOURNAL_STREAM");
        }
        let mut child = cmd.spawn().unwrap();
        common::wait_for("started", std::time::Duration::from_secs(10), || {
            common::log_has(&log, "started")
        })
        .await;
        common::signal(&child, "TERM");
        common::wait_exit(&mut child, std::time::Duration::from_secs(10)).await;
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            !text.contains('\u{1b}'),
            "no ANSI colours when stderr is not a terminal: {text}"
        );
        let first = text.lines().next().unwrap();
        assert_eq!(
            first.trim_start().starts_with("INFO"),
            journald,
            "journald: {journald}: {first}"
        );
    }
}

#[test]
fn set_with_a_token_value_for_its_name_never_echoes_it_and_names_the_known_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("database = \"q.db\"\n{COFFEE}[tokens.bob]\ntoken_env = \"SLACK_TOKEN_BOB\"\n"),
    );
    for token in ["xoxp-1234-abcd", "carol"] {
        let o = run(&["--config", &cfg, "set", "--token", token, "--text", "hi"]);
        assert_eq!(o.status.code(), Some(1), "{token}: {}", stderr(&o));
        let (out, err) = (stdout(&o), stderr(&o));
        assert!(
            !out.contains(token) && !err.contains(token),
            "never echoed: {out}{err}"
        );
        assert!(err.contains("known tokens: alice, bob"), "{err}");
        assert!(
            !dir.path().join("q.db").exists(),
            "checked before the database"
        );
    }
}

#[test]
fn set_checks_its_expiry_with_the_configs_duration_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &format!("database = \"q.db\"\n{COFFEE}"));
    for (expire, says) in [
        ("2 fortnights", "is not a duration"),
        ("0s", "is zero"),
        ("100000000y", "past the year 9999"),
    ] {
        let o = run(&[
            "--config", &cfg, "set", "--token", "alice", "--text", "hi", "--expire", expire,
        ]);
        assert_eq!(o.status.code(), Some(1), "{expire}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{expire}: {}", stderr(&o));
    }
    let o = run(&[
        "--config",
        &cfg,
        "set",
        "--token",
        "alice",
        "--text",
        &"x".repeat(101),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--text is 101 characters; Slack allows at most 100"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn set_then_queue_prints_the_row_as_text_and_as_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &format!("database = \"q.db\"\n{COFFEE}"));
    let db = dir.path().join("q.db");
    slack_statusd::queue::Queue::open(&db, true)
        .await
        .unwrap()
        .close()
        .await;
    let before = chrono::Utc::now().timestamp();
    let o = run(&[
        "--config", &cfg, "set", "--token", "alice", "--user", "U1", "--text", "Lunch", "--emoji",
        ":ramen:", "--expire", "1h",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let id: i64 = stdout(&o).trim().parse().expect("set prints the row id");

    let o = run(&["--config", &cfg, "queue", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let row: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(row["id"], id);
    assert_eq!(row["state"], "pending");
    assert_eq!(row["token"], "alice");
    assert_eq!(row["user"], "U1");
    assert_eq!(row["rule"], serde_json::Value::Null);
    assert_eq!(row["profile"]["status_text"], "Lunch");
    let expires = row["profile"]["status_expiration"].as_i64().unwrap();
    assert!(
        (before + 3600..=chrono::Utc::now().timestamp() + 3600).contains(&expires),
        "one hour after the command ran: {expires}"
    );

    let o = run(&["--config", &cfg, "queue", "list"]);
    let line = stdout(&o);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        fields[..3],
        [id.to_string().as_str(), "pending", "alice/U1"],
        "{line}"
    );
    assert_eq!(fields[4..], ["attempts=0", "-"], "{line}");

    let o = run(&["--config", &cfg, "queue", "retry", &id.to_string()]);
    assert_eq!(o.status.code(), Some(1), "a pending row is not retried");
    assert!(stderr(&o).contains(&format!("row {id} does not exist or is pending")));
    let o = run(&["--config", &cfg, "queue", "drop", &id.to_string()]);
    assert_eq!(stdout(&o), format!("row {id} deleted\n"));
    assert_eq!(stdout(&run(&["--config", &cfg, "queue"])), "");
}

#[test]
fn check_says_which_keys_need_a_restart() {
    let o = run(&["--config", &example(), "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("applies every key except `database`, which takes a restart"),
        "{}",
        stdout(&o)
    );
}

/// Every key of SPEC §6 is acted on now: `check` accepts restore, dnd and presence on rules
/// and calendars without a "not yet" warning.
#[test]
fn check_accepts_the_temporary_parts_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[tokens.me]\ntoken_env = \"NOPE\"\n\
         [[rules]]\nname = \"lunch\"\ntoken = \"me\"\nat = \"12:00\"\nstatus_text = \"Lunch\"\n\
         expire_after = \"1h\"\nrestore = true\npresence = \"away\"\n\
         [[rules]]\nname = \"focus\"\ntoken = \"me\"\nat = \"14:00\"\nstatus_text = \"Focus\"\n\
         expire_after = \"1h\"\ndnd = true\n\
         [[calendars]]\nname = \"work\"\ntoken = \"me\"\nurl = \"cal.ics\"\nrestore = true\n\
         [[calendars.map]]\nstatus_text = \"{summary}\"\ndnd = true\n",
    );
    let o = run(&["--config", &cfg, "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("not yet"), "{}", stderr(&o));
}
