//! The `slack-statusd` binary: parses the command line, sets up logging, calls the library's
//! commands (`slack_statusd::cli`) and maps their errors to exit codes: 0 success, 1 invalid
//! config or input, 2 runtime failure.

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use clap::Parser;

use slack_statusd::cli::args::{Cli, Command};
use slack_statusd::cli::{self, CliError, QueueAction};
use slack_statusd::config::{self, Config};
use slack_statusd::daemon::LogFilter;

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
