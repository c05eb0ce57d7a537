//! The `slack-statusd` binary: parses the command line, sets up logging and calls the library.
//! Exit codes: 0 success, 1 invalid config or input, 2 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, TimeDelta, Utc};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use slack_statusd::clock::Clock;
use slack_statusd::config::{self, Config};
use slack_statusd::daemon::{self, Mode};
use slack_statusd::preview;
use slack_statusd::profile::{Patch, Status};
use slack_statusd::queue::{NewUpdate, Queue, State, Target};

/// Keeps Slack statuses and profile fields on a schedule.
///
/// Rules live in a TOML file; every firing becomes a row in a SQLite queue, and a throttled
/// worker sends the rows through Slack's users.profile.set within Slack's rate limits.
#[derive(Debug, Parser)]
#[command(name = "slack-statusd", version, about, long_about, after_long_help = MANUAL)]
struct Cli {
    /// Config file. Default: $SLACK_STATUSD_CONFIG, else $XDG_CONFIG_HOME/slack-statusd/config.toml
    /// (or ~/.config/...) if it exists, else /etc/slack-statusd/config.toml.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground (systemd Type=notify).
    Run {
        /// Log each request instead of sending it; use a throwaway database; missing tokens
        /// are warnings.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the config; exit 0 if valid, 1 if not.
    Check,
    /// Print the next firings, earliest first.
    Preview {
        /// How many firings to print.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Start from this instant (RFC 3339) instead of now.
        #[arg(long, value_name = "RFC3339")]
        from: Option<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Enqueue one immediate update through the same queue and throttle; prints the row id.
    Set {
        /// Token name from the config.
        #[arg(long)]
        token: String,
        /// User ID to update (admin tokens); default: the token's own profile.
        #[arg(long)]
        user: Option<String>,
        /// Status text.
        #[arg(long)]
        text: Option<String>,
        /// Status emoji, such as :coffee:.
        #[arg(long)]
        emoji: Option<String>,
        /// Expire the status this long after the command runs (e.g. 2h, 30m).
        #[arg(long, value_name = "DURATION")]
        expire: Option<String>,
        /// Clear the status.
        #[arg(long, conflicts_with_all = ["text", "emoji", "expire"])]
        clear: bool,
    },
    /// Inspect and manage the queue.
    Queue {
        #[command(subcommand)]
        action: Option<QueueAction>,
        /// Print JSON lines.
        #[arg(long, global = true)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum QueueAction {
    /// Every row, newest first.
    List,
    /// Failed rows only.
    Failed,
    /// Put a failed, held, skipped or expired row back to pending.
    Retry {
        /// Row id.
        id: i64,
    },
    /// Delete a row that is not in flight.
    Drop {
        /// Row id.
        id: i64,
    },
}

/// The rest of the manual, shown by `--help` (not `-h`).
const MANUAL: &str = "\
FILES:
    /etc/slack-statusd/config.toml    the system service's config (annotated template)
    <config folder>/config.d/*.toml   drop-ins: more [tokens] and [[rules]], one file per person
    ~/.config/slack-statusd/config.toml
                                      a user's config (user service)
    $STATE_DIRECTORY/queue.db         the queue under systemd (StateDirectory=); without
                                      systemd: /var/lib/slack-statusd/queue.db for a config in
                                      /etc/slack-statusd/, else ~/.local/state/slack-statusd/
    <database>.lock                   held by the running daemon: one `run` per database

ENVIRONMENT:
    SLACK_STATUSD_CONFIG     config file when --config is not given
    RUST_LOG                 log filter; overrides the config's log_level
    CREDENTIALS_DIRECTORY    token_file paths are relative to it (systemd LoadCredential=)
    STATE_DIRECTORY          default folder of the database (systemd StateDirectory=)
    NOTIFY_SOCKET, WATCHDOG_USEC
                             systemd notify protocol: READY=1, STATUS=, WATCHDOG=1, STOPPING=1

SIGNALS:
    SIGHUP             reload the config (an invalid one is rejected; the old one stays)
    SIGTERM, SIGINT    stop: a request in flight gets 3 s, pending rows stay in the database
    Editing the config file or a drop-in also reloads it.

EXIT STATUS:
    0    success
    1    invalid config or input (including a token that cannot be read)
    2    runtime failure: database, I/O, another `run` holding the database

EXAMPLES:
    slack-statusd --config config/example.toml run --dry-run
    slack-statusd check && systemctl reload slack-statusd
    slack-statusd preview --count 5
    slack-statusd set --token alice --text 'In a meeting' --emoji :calendar: --expire 1h
    slack-statusd queue failed --json
";

/// An error with the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn input(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 1,
        error: error.into(),
    }
}

fn runtime(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: error.into(),
    }
}

fn main() -> ExitCode {
    // Usage errors are input errors (exit 1), not clap's default 2, which means a runtime
    // failure here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(config::default_config_path);
    let result = match cli.command {
        Command::Check => check(&config_path),
        Command::Preview { count, from, json } => preview_cmd(&config_path, count, from, json),
        command => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(async_main(&config_path, command)),
            Err(e) => Err(runtime(e)),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // Our error types carry their cause in their message already.
            eprintln!("slack-statusd: {}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn load(path: &std::path::Path) -> Result<Config, Failure> {
    let config = config::load(path).map_err(input)?;
    for w in &config.warnings {
        eprintln!("slack-statusd: warning: {w}");
    }
    Ok(config)
}

fn check(path: &std::path::Path) -> Result<(), Failure> {
    let config = load(path)?;
    // Read token files as `run` will, so a special or oversized one fails here first.
    let tokens = config.check_token_files();
    for w in &tokens.warnings {
        eprintln!("slack-statusd: warning: {w}");
    }
    if !tokens.errors.is_empty() {
        return Err(input(daemon::DaemonError::Tokens(tokens.errors)));
    }
    println!(
        "{}: valid ({} rules, {} tokens, {} files)",
        path.display(),
        config.rules.len(),
        config.tokens.len(),
        config.files.len()
    );
    Ok(())
}

fn preview_cmd(
    path: &std::path::Path,
    count: usize,
    from: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    let config = load(path)?;
    let from = match from {
        Some(s) => DateTime::parse_from_rfc3339(&s)
            .map_err(|e| {
                input(anyhow::anyhow!(
                    "--from {s:?} is not RFC 3339 ({e}); write e.g. 2026-11-23T08:00:00+01:00"
                ))
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    for f in preview::upcoming(&config, from, count) {
        if json {
            println!("{}", f.to_json());
        } else {
            println!("{}", f.to_line());
        }
    }
    Ok(())
}

async fn async_main(path: &std::path::Path, command: Command) -> Result<(), Failure> {
    let config = load(path)?;
    match command {
        Command::Run { dry_run } => run(config, dry_run).await,
        Command::Set {
            token,
            user,
            text,
            emoji,
            expire,
            clear,
        } => set(&config, token, user, text, emoji, expire, clear).await,
        Command::Queue { action, json } => {
            queue_cmd(&config, action.unwrap_or(QueueAction::List), json).await
        }
        Command::Check | Command::Preview { .. } => unreachable!("handled without a runtime"),
    }
}

fn init_logging(config: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // journald stamps every line itself.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

async fn run(config: Config, dry_run: bool) -> Result<(), Failure> {
    init_logging(&config);
    // Signal handlers first: a SIGTERM or SIGHUP during start-up must not kill the process
    // with the default action.
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone()).map_err(runtime)?;
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    daemon::watch::watch_sighup(reload_tx.clone(), shutdown.clone()).map_err(runtime)?;
    let mode = if dry_run { Mode::DryRun } else { Mode::Live };
    // Tokens first: a missing one is a config problem (exit 1), found before any file is made.
    let secrets = daemon::resolve_tokens(&config, mode).map_err(input)?;
    // The dry run never touches the real queue: a throwaway database, deleted on exit.
    let scratch = if dry_run {
        Some(tempfile::tempdir().map_err(runtime)?)
    } else {
        None
    };
    let db_path = match &scratch {
        Some(dir) => dir.path().join("dry-run.db"),
        None => config.database.clone(),
    };
    let _lock = daemon::lock::lock(&db_path).map_err(runtime)?;
    let queue = Queue::open(&db_path, true)
        .await
        .map_err(|e| runtime(e.at(&db_path)))?;

    // Keep the watcher alive for as long as the daemon runs.
    let _watcher = match daemon::watch::watch_files(&config.path, reload_tx, shutdown.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config for changes; reload with SIGHUP");
            None
        }
    };
    daemon::run(
        config,
        secrets,
        queue,
        Clock::system(),
        mode,
        reload_rx,
        shutdown,
    )
    .await
    .map_err(runtime)
}

/// Cancel `shutdown` on SIGTERM or SIGINT.
fn stop_on_signal(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Registered now, before anything else starts; awaited in the background.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
        shutdown.cancel();
    });
    Ok(())
}

async fn open_existing(config: &Config) -> Result<Queue, Failure> {
    Queue::open(&config.database, false)
        .await
        .map_err(|e| runtime(e.at(&config.database)))
}

/// Close the queue after a CLI command and hand any file SQLite created (`-wal`, `-shm`, as
/// root from a shell) to the database's owner, so the service can still open them.
async fn close_cli(queue: Queue) {
    queue.close().await;
    if let Err(e) = slack_statusd::queue::match_owner(queue.path()) {
        eprintln!("slack-statusd: warning: {e}");
    }
}

async fn set(
    config: &Config,
    token: String,
    user: Option<String>,
    text: Option<String>,
    emoji: Option<String>,
    expire: Option<String>,
    clear: bool,
) -> Result<(), Failure> {
    if !config.tokens.contains_key(&token) {
        let known: Vec<&str> = config.tokens.keys().map(String::as_str).collect();
        return Err(input(anyhow::anyhow!(
            "--token {token:?} is not in the config; known tokens: {}",
            known.join(", ")
        )));
    }
    let now = Utc::now();
    let status = if clear {
        Status {
            text: String::new(),
            emoji: String::new(),
            expiration: 0,
        }
    } else {
        if text.is_none() && emoji.is_none() {
            return Err(input(anyhow::anyhow!(
                "give --text and/or --emoji, or --clear"
            )));
        }
        let text = text.unwrap_or_default();
        let max = slack_statusd::profile::MAX_STATUS_TEXT;
        if text.chars().count() > max {
            return Err(input(anyhow::anyhow!(
                "--text is {} characters; Slack allows at most {max}",
                text.chars().count()
            )));
        }
        let expiration = match expire {
            Some(d) => {
                let d = humantime::parse_duration(&d).map_err(|e| {
                    input(anyhow::anyhow!("--expire {d:?}: {e}; write e.g. 30m or 2h"))
                })?;
                let d = TimeDelta::from_std(d).map_err(input)?;
                (now + d).timestamp()
            }
            None => 0,
        };
        Status {
            text,
            emoji: emoji.unwrap_or_default(),
            expiration,
        }
    };
    let queue = open_existing(config).await?;
    let update = NewUpdate {
        rule: None,
        target: Target { token, user },
        fire_at: now,
        patch: Patch {
            status: Some(status),
            ..Patch::default()
        },
        respect_manual: false,
    };
    let id = queue
        .enqueue(&update, now)
        .await
        .map_err(|e| runtime(e.at(queue.path())))?;
    close_cli(queue).await;
    println!("{id}");
    Ok(())
}

async fn queue_cmd(config: &Config, action: QueueAction, json: bool) -> Result<(), Failure> {
    let queue = open_existing(config).await?;
    let result = match action {
        QueueAction::List => print_rows(&queue, &[], json).await,
        QueueAction::Failed => print_rows(&queue, &[State::Failed], json).await,
        QueueAction::Retry { id } => match queue
            .retry(id, Utc::now())
            .await
            .map_err(|e| runtime(e.at(queue.path())))?
        {
            true => {
                println!("row {id} is pending again");
                Ok(())
            }
            false => Err(input(anyhow::anyhow!(
                "row {id} does not exist or is pending, in flight or sent"
            ))),
        },
        QueueAction::Drop { id } => match queue
            .drop_row(id)
            .await
            .map_err(|e| runtime(e.at(queue.path())))?
        {
            true => {
                println!("row {id} deleted");
                Ok(())
            }
            false => Err(input(anyhow::anyhow!(
                "row {id} does not exist or is in flight"
            ))),
        },
    };
    close_cli(queue).await;
    result
}

async fn print_rows(queue: &Queue, states: &[State], json: bool) -> Result<(), Failure> {
    let rows = queue
        .list(states)
        .await
        .map_err(|e| runtime(e.at(queue.path())))?;
    for r in rows {
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "id": r.id, "state": r.state.as_str(), "rule": r.rule, "token": r.target.token,
                    "user": r.target.user, "at": r.fire_at.to_rfc3339(), "attempts": r.attempts,
                    "last_error": r.last_error, "profile": r.patch.to_profile_json(),
                })
            );
        } else {
            println!(
                "{:>6}  {:<10}  {:<24}  {}  attempts={}  {}",
                r.id,
                r.state.as_str(),
                r.target.to_string(),
                r.fire_at.to_rfc3339(),
                r.attempts,
                r.last_error.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}
