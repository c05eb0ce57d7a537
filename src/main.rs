//! The `slack-statusd` binary: parses the command line, sets up logging, calls the library's
//! commands (`slack_statusd::cli`) and maps their errors to exit codes: 0 success, 1 invalid
//! config or input, 2 runtime failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;
use clap::{Parser, Subcommand};

use slack_statusd::cli::{self, CliError, QueueAction, SetArgs};
use slack_statusd::config::{self, Config};
use slack_statusd::daemon::LogFilter;

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
        /// List the calendars' expanded occurrences instead (fetches each calendar once).
        #[arg(long)]
        events: bool,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Enqueue one immediate update through the same queue and throttle; prints the row id.
    Set(SetArgs),
    /// Inspect and manage the queue.
    Queue {
        #[command(subcommand)]
        action: Option<QueueCommand>,
        /// Print JSON lines.
        #[arg(long, global = true)]
        json: bool,
    },
    /// The daemon, tokens and next firings at a glance; works with the daemon stopped too.
    Status {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
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
    2    runtime failure: database, I/O, a calendar feed that cannot be fetched, another
         `run` holding the database

EXAMPLES:
    slack-statusd --config config/example.toml run --dry-run
    slack-statusd check && systemctl reload slack-statusd
    slack-statusd preview --count 5
    slack-statusd preview --events --json
    slack-statusd set --token alice --text 'In a meeting' --emoji :calendar: --expire 1h
    slack-statusd queue failed --json
";

impl From<QueueCommand> for QueueAction {
    fn from(c: QueueCommand) -> Self {
        match c {
            QueueCommand::List => QueueAction::List,
            QueueCommand::Failed => QueueAction::Failed,
            QueueCommand::Retry { id } => QueueAction::Retry(id),
            QueueCommand::Drop { id } => QueueAction::Drop(id),
        }
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
    match command(&config_path, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Our error types carry their cause in their message already.
            eprintln!("slack-statusd: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// SPEC §2: 1 for what the user can fix in the config or the arguments, 2 for the rest.
fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<CliError>() {
        Some(e) if e.is_input() => 1,
        _ => 2,
    }
}

fn command(path: &Path, command: Command) -> anyhow::Result<()> {
    let config = cli::load(path)?;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Check => cli::check(&config, &mut out)?,
        Command::Preview {
            count,
            from,
            events,
            json,
        } => {
            let from = match from {
                Some(s) => cli::parse_from(&s)?,
                None => Utc::now(),
            };
            let rt = runtime()?;
            if events {
                rt.block_on(cli::preview_events(&config, from, count, json, &mut out))?
            } else {
                rt.block_on(cli::preview(&config, from, count, json, &mut out))?
            }
        }
        Command::Run { dry_run } => {
            let log_filter = init_logging(&config);
            let rt = runtime()?;
            let done = rt.block_on(cli::run(config, dry_run, log_filter));
            // A blocking read the daemon gave up on at shutdown (a config swapped for a FIFO)
            // must not keep the process alive: dropping the runtime would wait for it forever.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            done?
        }
        Command::Set(args) => runtime()?.block_on(cli::set(&config, &args, &mut out))?,
        Command::Queue { action, json } => {
            let action = action.map_or(QueueAction::List, QueueAction::from);
            runtime()?.block_on(cli::queue(&config, action, json, &mut out))?
        }
        Command::Status { json } => {
            runtime()?.block_on(cli::status(&config, Utc::now(), json, &mut out))?
        }
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// Log to stderr, filtered by `RUST_LOG` if it is set and valid, else by the config's
/// `log_level`; in the second case the filter sits behind a reload layer so that a reload
/// can change it (the returned handle). journald stamps every line itself, so under it our
/// lines carry no time.
fn init_logging(config: &Config) -> LogFilter {
    use std::io::IsTerminal;
    use tracing_subscriber::{fmt, prelude::*, reload, EnvFilter};
    let (filter, from_env) = match EnvFilter::try_from_default_env() {
        Ok(f) => (f, true),
        Err(_) => (EnvFilter::new(&config.log_level), false),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let lines = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        registry.with(lines.without_time()).init();
    } else {
        registry.with(lines).init();
    }
    if from_env {
        return LogFilter::overridden();
    }
    LogFilter::new(move |level| {
        let filter = EnvFilter::builder()
            .parse(level)
            .map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    })
}
