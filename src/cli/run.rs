//! `slack-statusd run`: everything between a loaded config and [`daemon::run`] — signal
//! handlers, tokens, the dry run's throwaway database, the run lock, the queue and the
//! config watcher — in the order that keeps a failure cheap and its exit code right.

use tokio_util::sync::CancellationToken;

use super::CliError;
use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::{self, Context, LogFilter, Mode};
use crate::queue::Queue;

/// Run the daemon on `config` until SIGTERM or SIGINT. Logging is already set up, and a
/// reload hands its `log_level` to `log_filter`.
pub async fn run(config: Config, dry_run: bool, log_filter: LogFilter) -> Result<(), CliError> {
    let io = |what| move |source| CliError::Io { what, source };
    // Signal handlers first: a SIGTERM or SIGHUP during start-up must not kill the process
    // with the default action.
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone()).map_err(io("cannot install the SIGTERM/SIGINT handlers"))?;
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    daemon::watch::watch_sighup(reload_tx.clone(), shutdown.clone())
        .map_err(io("cannot install the SIGHUP handler"))?;
    let mode = if dry_run { Mode::DryRun } else { Mode::Live };
    // Tokens first: a missing one is a config problem (exit 1), found before any file is made.
    let secrets = daemon::resolve_tokens(&config, mode)?;
    // The dry run never touches the real queue: a throwaway database, deleted on exit.
    let scratch = if dry_run {
        Some(tempfile::tempdir().map_err(io("cannot create the dry run's temporary folder"))?)
    } else {
        None
    };
    let db_path = match &scratch {
        Some(dir) => dir.path().join("dry-run.db"),
        None => super::sqlite_file(&config)?.to_path_buf(),
    };
    let _lock = daemon::lock::lock(&db_path)?;
    let queue = Queue::open(&db_path, true)
        .await
        .map_err(|e| e.at(&db_path))?;

    // Keep the watcher alive for as long as the daemon runs.
    let _watcher = match daemon::watch::watch_files(&config.path, reload_tx, shutdown.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config for changes; reload with SIGHUP");
            None
        }
    };
    let context = Context {
        clock: Clock::system(),
        mode,
        log_filter,
    };
    daemon::run(config, secrets, queue, context, reload_rx, shutdown).await?;
    Ok(())
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
