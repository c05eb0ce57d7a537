//! The daemon: wires config, scheduler, queue, throttle and Slack client together and owns
//! every background task.
//!
//! - [`scheduler`]: firings → queue rows.
//! - [`worker`]: queue rows → Slack, one task per token.
//!
//! Every task gets the same [`CancellationToken`]; [`run`] returns once all of them have
//! finished, so nothing outlives a shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{Config, TokenError};
use crate::queue::{Queue, QueueError};
use crate::slack::{Client, REQUEST_TIMEOUT};

pub mod lock;
pub mod scheduler;
pub mod worker;

pub use scheduler::Scheduler;
pub use worker::{Sender, Step, Worker};

/// How often the daemon looks for rows written by another process (`set`, `queue retry`).
pub const EXTERNAL_CHECK: Duration = Duration::from_secs(1);

/// How often finished rows older than `retention` are deleted.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The queue database failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Tokens could not be read (outside `--dry-run`).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Tokens(Vec<TokenError>),
}

/// How the daemon sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Send to Slack.
    Live,
    /// Log each request instead of sending it; unresolvable tokens are warnings.
    DryRun,
}

/// Run the daemon until `shutdown` is cancelled. `queue` must already be open.
pub async fn run(
    config: Config,
    queue: Queue,
    clock: Clock,
    mode: Mode,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let now = clock.now();
    let recovered = queue.recover_in_flight(now).await?;
    if recovered > 0 {
        tracing::warn!(
            rows = recovered,
            "requests in flight at the last stop will be sent again"
        );
    }
    // A fresh start re-reads every token, so held rows get one more chance.
    queue.release_held(None, now).await?;
    let known: Vec<String> = config.tokens.keys().cloned().collect();
    let removed = queue.fail_removed_tokens(&known, now).await?;
    if removed > 0 {
        tracing::warn!(
            rows = removed,
            "rows of tokens no longer in the config failed (token_removed)"
        );
    }

    let (secrets, missing) = config.resolve_tokens();
    if !missing.is_empty() {
        match mode {
            Mode::Live => return Err(DaemonError::Tokens(missing)),
            Mode::DryRun => {
                for e in &missing {
                    tracing::warn!("{e} (dry run: continuing)");
                }
            }
        }
    }

    let client = Client::new(&config.api_url, REQUEST_TIMEOUT);
    let tracker = TaskTracker::new();
    let mut wakers: HashMap<String, Arc<Notify>> = HashMap::new();
    for name in config.tokens.keys() {
        let sender = match (mode, secrets.get(name)) {
            (Mode::DryRun, _) => Sender::DryRun,
            (Mode::Live, Some(token)) => Sender::Slack {
                client: client.clone(),
                token: token.clone(),
            },
            (Mode::Live, None) => continue, // unreachable: missing tokens returned above
        };
        let worker = Worker::new(
            name.clone(),
            sender,
            queue.clone(),
            clock.clone(),
            config.limits,
            config.retry,
        )
        .await?;
        let wake = Arc::new(Notify::new());
        wakers.insert(name.clone(), wake.clone());
        tracker.spawn(worker.run(wake, shutdown.clone()));
    }

    let scheduler = Scheduler::new(
        config.rules.clone(),
        queue.clone(),
        clock.clone(),
        config.catch_up,
        wakers.clone(),
    )
    .await?;
    tracing::info!(
        rules = config.rules.len(),
        tokens = config.tokens.len(),
        database = %queue.path().display(),
        next = ?scheduler.next_firing().map(|t| t.to_rfc3339()),
        dry_run = (mode == Mode::DryRun),
        "started"
    );
    tracker.spawn(scheduler.run(shutdown.clone()));
    tracker.spawn(watch_external(queue.clone(), wakers, shutdown.clone()));
    tracker.spawn(purge(
        queue.clone(),
        clock.clone(),
        config.retention,
        config.limits.window,
        shutdown.clone(),
    ));
    tracker.close();

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    tracker.wait().await;
    queue.close().await;
    tracing::info!("stopped; pending rows stay in the database");
    Ok(())
}

/// Wake every worker when another process changed the database (`set`, `queue retry`).
/// SQLite's `data_version` is a cheap counter read, done at most once per [`EXTERNAL_CHECK`].
async fn watch_external(
    queue: Queue,
    wakers: HashMap<String, Arc<Notify>>,
    shutdown: CancellationToken,
) {
    let mut watcher = match queue.change_watcher().await {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the database for rows added by `set`");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EXTERNAL_CHECK) => {}
            _ = shutdown.cancelled() => return,
        }
        match watcher.changed().await {
            Ok(true) => wakers.values().for_each(|w| w.notify_one()),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "database change check failed"),
        }
    }
}

/// Delete finished rows older than `retention`, once an hour.
async fn purge(
    queue: Queue,
    clock: Clock,
    retention: Duration,
    window: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let now = clock.now();
        let keep = TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX);
        let window = TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX);
        match queue
            .purge(
                now.checked_sub_signed(keep).unwrap_or(now),
                now.checked_sub_signed(window).unwrap_or(now),
            )
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "deleted finished rows older than retention"),
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PURGE_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
