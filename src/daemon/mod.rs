//! The daemon: wires config, scheduler, queue, throttle and Slack client together and owns
//! every background task.
//!
//! - [`scheduler`]: firings → queue rows.
//! - `calendars`: calendar feeds → queue rows, one task per calendar.
//! - [`worker`]: queue rows → Slack, one task per token.
//! - [`watch`]: reload triggers (SIGHUP, config files changing on disk).
//! - [`notify`]: the systemd notify protocol.
//! - [`lock`]: one `run` per database.
//! - [`log_filter`]: the handle through which a reload changes the log filter.
//!
//! [`run`] is the supervisor: it starts the tasks, swaps them on a reload, and on shutdown
//! cancels them all and waits until every one has finished, so nothing outlives it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{mpsc, watch as watch_chan, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{self, Config, Limits, RetryPolicy, Secret, TokenError};
use crate::feed::{FeedError, FetchLimits, Fetcher};
use crate::observe::{self, Endpoints, Metrics, Server};
use crate::queue::{Queue, QueueError, State};
use crate::slack::{Client, REQUEST_TIMEOUT};

mod calendars;
mod external;
mod flight;
pub(crate) mod lock;
mod log_filter;
mod notify;
pub mod scheduler;
mod sender;
pub(crate) mod watch;
mod worker;

pub use lock::LockError;
pub use log_filter::{Applied, LogFilter};
pub use scheduler::{Scheduler, Start, AHEAD};
pub use sender::Sender;
pub use watch::Trigger;
pub use worker::{Step, Worker};

/// How often the daemon looks for rows written by another process (`set`, `queue retry`).
pub const EXTERNAL_CHECK: Duration = Duration::from_secs(1);

/// How often finished rows older than `retention` are deleted (and right after a reload that
/// changes `retention` or `[limits] window`).
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The config keys a reload does not apply: a running daemon keeps its database open (and
/// locked) for good, so a new `database` takes a restart. Every other key applies on reload.
pub const NEEDS_RESTART: &[&str] = &["database"];

/// How often the STATUS= line is refreshed.
pub const STATUS_EVERY: Duration = Duration::from_secs(30);

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The queue database failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The HTTP client for calendar feeds could not start.
    #[error(transparent)]
    Fetcher(#[from] FeedError),
    /// Tokens could not be read (outside `--dry-run`).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Tokens(Vec<TokenError>),
    /// `[http] listen` could not be bound.
    #[error("[http] listen {addr}: cannot listen there: {source}")]
    Listen {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// How the daemon sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Send to Slack.
    Live,
    /// Log each request instead of sending it; unresolvable tokens are warnings.
    DryRun,
}

/// Give memory freed after parsing a config back to the OS.
///
/// Parsing keeps the whole spanned TOML document in memory (about 14 bytes per byte of
/// input); glibc holds on to those pages after they are freed, so a daemon that loaded
/// 100,000 rules would otherwise keep ~100 MB it no longer uses.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no live
    // allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Read every token of `config`. Outside `--dry-run` a token that cannot be read is an error;
/// in a dry run it is a warning and the token is simply absent.
pub fn resolve_tokens(
    config: &Config,
    mode: Mode,
) -> Result<BTreeMap<String, Secret>, DaemonError> {
    let (secrets, missing) = config.resolve_tokens();
    if missing.is_empty() {
        return Ok(secrets);
    }
    match mode {
        Mode::Live => Err(DaemonError::Tokens(missing)),
        Mode::DryRun => {
            for e in &missing {
                tracing::warn!("{e} (dry run: continuing)");
            }
            Ok(secrets)
        }
    }
}

/// What the daemon needs from the process around it besides its config and queue.
#[derive(Debug, Clone)]
pub struct Context {
    /// The wall clock.
    pub clock: Clock,
    /// Whether it sends or only logs.
    pub mode: Mode,
    /// Where a reloaded `log_level` goes.
    pub log_filter: LogFilter,
}

/// A running worker and what it was started with, to tell whether a reload changes it.
struct WorkerHandle {
    /// The token's value (`None` in a dry run without it).
    secret: Option<Secret>,
    /// Limits and retry policy it runs with.
    settings: (Limits, RetryPolicy, String),
    /// Wakes it when rows arrive.
    wake: Arc<Notify>,
    /// Stops it alone (a child of the daemon's shutdown token).
    stop: CancellationToken,
    /// Finishes when it has stopped.
    task: JoinHandle<()>,
}

/// A running scheduler.
struct SchedulerHandle {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The supervisor's state: the live config and the tasks built from it.
struct Daemon {
    config: Config,
    queue: Queue,
    clock: Clock,
    mode: Mode,
    client: Client,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    workers: BTreeMap<String, WorkerHandle>,
    scheduler: Option<SchedulerHandle>,
    /// One task per calendar, restarted on every reload.
    calendars: Vec<SchedulerHandle>,
    /// Fetches every calendar (one HTTP client for all).
    fetcher: Fetcher,
    /// The scheduler's next firing, for the STATUS= line.
    next_firing: watch_chan::Receiver<Option<DateTime<Utc>>>,
    next_firing_tx: watch_chan::Sender<Option<DateTime<Utc>>>,
    /// Shared with the external-change watcher, which wakes every worker.
    wakers: Wakers,
    /// Takes the `log_level` of a reloaded config.
    log_filter: LogFilter,
    /// What the purge task keeps, updated by a reload.
    retention: watch_chan::Sender<Retention>,
    /// The metrics every task counts in, and the health state behind `/healthz`.
    metrics: Metrics,
    /// The `[http]` server and the `listen` it was bound for, while one runs.
    http: Option<(std::net::SocketAddr, Server)>,
}

/// Run the daemon until `shutdown` is cancelled. `queue` must already be open and `secrets`
/// resolved (see [`resolve_tokens`]); each message on `reload` re-reads the config file.
pub async fn run(
    config: Config,
    secrets: BTreeMap<String, Secret>,
    queue: Queue,
    context: Context,
    mut reload: mpsc::Receiver<Trigger>,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let Context {
        clock,
        mode,
        log_filter,
    } = context;
    let metrics = Metrics::new(config.http.token_labels);
    // Bound before anything else starts, so that an address in use fails the start (exit 2).
    let listener = match config.http.listen {
        Some(addr) => Some((
            addr,
            observe::bind(addr)
                .await
                .map_err(|source| DaemonError::Listen { addr, source })?,
        )),
        None => None,
    };
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
    fail_removed(&queue, &config, now).await?;

    let (next_firing_tx, next_firing) = watch_chan::channel(None);
    let (retention, retention_rx) = watch_chan::channel(Retention::of(&config));
    let mut daemon = Daemon {
        client: Client::new(&config.api_url, REQUEST_TIMEOUT),
        config,
        queue: queue.clone(),
        clock: clock.clone(),
        mode,
        tracker: TaskTracker::new(),
        shutdown: shutdown.clone(),
        workers: BTreeMap::new(),
        scheduler: None,
        calendars: Vec::new(),
        fetcher: Fetcher::new(FetchLimits::default())?,
        next_firing,
        next_firing_tx,
        wakers: Arc::default(),
        log_filter,
        retention,
        metrics: metrics.clone(),
        http: None,
    };
    if let Some((addr, listener)) = listener {
        daemon.serve_http(addr, listener);
    }
    // The scheduler decides what the downtime left in the queue (firings queued ahead whose
    // instant passed) before any worker may claim it.
    let scheduler = daemon.new_scheduler(Start::AfterDowntime).await?;
    daemon.apply_tokens(&secrets).await?;
    daemon.spawn_scheduler(scheduler);
    daemon.start_calendars().await?;
    daemon.tracker.spawn(external::watch(
        queue.clone(),
        daemon.wakers.clone(),
        shutdown.clone(),
    ));
    daemon.tracker.spawn(purge(
        queue.clone(),
        clock.clone(),
        retention_rx,
        shutdown.clone(),
    ));

    release_freed_memory();
    let status = daemon.status_line().await;
    tracing::info!(
        rules = daemon.config.rules.len(),
        tokens = daemon.config.tokens.len(),
        database = %queue.path().display(),
        dry_run = (mode == Mode::DryRun),
        "started: {status}"
    );
    notify::ready(&status);
    metrics.health(|h| h.ready = true);

    let watchdog = notify::watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    let health = queue.health().clone();
    // The systemd status line is refreshed after writes, at most once per STATUS_EVERY: an
    // idle daemon has nothing new to say and is not woken to say it.
    let mut last_status = tokio::time::Instant::now();
    let mut status_due: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            // The database cannot be used any more: stop, so that systemd restarts us, rather
            // than stay up without firing.
            _ = health.fatal().cancelled() => break,
            Some(trigger) = reload.recv() => daemon.reload(trigger).await,
            _ = watchdog_tick.tick(), if watchdog.is_some() => notify::watchdog(),
            // The writer, quiet after a burst of writes, freed its page cache: give that back
            // to the OS, with whatever the burst left free (its pages sit in glibc's arenas).
            _ = health.quiet().notified() => release_freed_memory(),
            _ = health.written().notified(), if status_due.is_none() => {
                status_due = Some(last_status + STATUS_EVERY);
            }
            _ = tokio::time::sleep_until(status_due.unwrap_or_else(tokio::time::Instant::now)),
                if status_due.is_some() => {
                status_due = None;
                last_status = tokio::time::Instant::now();
                // A database deleted under us takes no write error: look at the file itself.
                if health.check_file().is_ok() {
                    notify::status(&daemon.status_line().await);
                }
            }
        }
    }

    tracing::info!("shutting down");
    notify::stopping();
    metrics.health(|h| h.stopping = true);
    shutdown.cancel();
    daemon.tracker.close();
    daemon.tracker.wait().await;
    // The server answers /readyz with 503 until the tasks have stopped.
    if let Some((_, server)) = daemon.http.take() {
        server.stop().await;
    }
    queue.close().await;
    if let Some(e) = health.fatal_error() {
        return Err(e.into());
    }
    tracing::info!("stopped; pending rows stay in the database");
    Ok(())
}

impl Daemon {
    /// Start, keep or restart one worker per token so that they match `self.config` and
    /// `secrets`; stop workers of tokens no longer configured.
    async fn apply_tokens(&mut self, secrets: &BTreeMap<String, Secret>) -> Result<(), QueueError> {
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|k| !self.config.tokens.contains_key(*k))
            .cloned()
            .collect();
        for name in gone {
            if let Some(h) = self.workers.remove(&name) {
                stop(h.stop, h.task).await;
                tracing::info!(token = %name, "token removed: its worker stopped");
            }
        }
        let settings = (
            self.config.limits,
            self.config.retry,
            self.config.api_url.clone(),
        );
        // Owned names: the loop below changes `self.workers` while it walks them.
        let wanted: Vec<String> = self.config.tokens.keys().cloned().collect();
        for name in wanted {
            let secret = secrets.get(&name).cloned();
            if let Some(h) = self.workers.get(&name) {
                if h.secret == secret && h.settings == settings {
                    continue;
                }
            }
            if let Some(h) = self.workers.remove(&name) {
                stop(h.stop, h.task).await;
                // Its worker has ended: an outcome it could not record (the database refused
                // it until the stop) leaves rows claimed, which the new worker would never
                // see and newer rows would overtake. Put them back, as a restart would.
                self.queue
                    .recover_token_in_flight(Some(&name), self.clock.now())
                    .await?;
                // A changed token gets its held rows back.
                let released = self
                    .queue
                    .release_held(Some(&name), self.clock.now())
                    .await?;
                tracing::info!(token = %name, released, "token changed: worker restarted");
            }
            let sender = match (&secret, self.mode) {
                (Some(token), Mode::Live) => Sender::Slack {
                    client: self.client.clone(),
                    token: token.clone(),
                },
                _ => Sender::DryRun,
            };
            let worker = Worker::new(
                name.clone(),
                sender,
                self.queue.clone(),
                self.clock.clone(),
                self.config.limits,
                self.config.retry,
            )
            .await?
            .with_metrics(self.metrics.clone());
            self.metrics.token_held(&name, false);
            let wake = Arc::new(Notify::new());
            let stop = self.shutdown.child_token();
            let task = self.tracker.spawn(worker.run(wake.clone(), stop.clone()));
            self.workers.insert(
                name,
                WorkerHandle {
                    secret,
                    settings: settings.clone(),
                    wake,
                    stop,
                    task,
                },
            );
        }
        self.metrics.set_tokens(self.config.tokens.keys());
        *self.wakers.lock().expect("wakers lock") = self
            .workers
            .iter()
            .map(|(name, h)| (name.clone(), h.wake.clone()))
            .collect();
        Ok(())
    }

    /// (Re)start the scheduler on the current rules. Marks live in the database, so a rule
    /// that stays keeps its place and a new rule starts from now.
    async fn start_scheduler(&mut self, start: Start) -> Result<(), QueueError> {
        let scheduler = self.new_scheduler(start).await?;
        self.spawn_scheduler(scheduler);
        Ok(())
    }

    /// Stop the running scheduler, if any, and make the next one on the current rules: this
    /// is where each rule's mark is resumed (see `scheduler::resume`).
    async fn new_scheduler(&mut self, start: Start) -> Result<Scheduler, QueueError> {
        if let Some(old) = self.scheduler.take() {
            stop(old.stop, old.task).await;
        }
        Ok(Scheduler::new(
            self.config.rules.clone(),
            self.queue.clone(),
            self.clock.clone(),
            self.config.catch_up,
            self.wakers.clone(),
            start,
        )
        .await?
        .with_metrics(self.metrics.clone()))
    }

    /// Run `scheduler` until shutdown or the next reload.
    fn spawn_scheduler(&mut self, scheduler: Scheduler) {
        // Published now, so the READY=1 status line already names the next firing.
        self.next_firing_tx.send_replace(scheduler.next_firing());
        let stop = self.shutdown.child_token();
        let task = self
            .tracker
            .spawn(scheduler.run(stop.clone(), self.next_firing_tx.clone()));
        self.scheduler = Some(SchedulerHandle { stop, task });
    }

    /// (Re)start one task per calendar on the current config. Each begins from the copy kept
    /// in the database and fetches at once; the rows are the memory, so a restarted task
    /// never enqueues a change twice. The pending rows of calendars no longer configured are
    /// superseded, and their copies dropped.
    async fn start_calendars(&mut self) -> Result<(), QueueError> {
        for old in self.calendars.drain(..) {
            stop(old.stop, old.task).await;
        }
        let names: Vec<String> = self
            .config
            .calendars
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let removed = self
            .queue
            .supersede_removed_calendars(&names, self.clock.now())
            .await?;
        if removed > 0 {
            tracing::info!(
                rows = removed,
                "pending rows of calendars no longer in the config superseded (calendar_removed)"
            );
        }
        self.queue.drop_calendar_copies_except(&names).await?;
        for calendar in self.config.calendars.iter().cloned() {
            let task = calendars::CalendarTask::new(
                calendar,
                self.fetcher.clone(),
                self.queue.clone(),
                self.clock.clone(),
                self.wakers.clone(),
                self.metrics.clone(),
            )
            .await?;
            let stop = self.shutdown.child_token();
            let task = self.tracker.spawn(task.run(stop.clone()));
            self.calendars.push(SchedulerHandle { stop, task });
        }
        Ok(())
    }

    /// Re-read the config. An invalid one is rejected with the same messages as `check`, and
    /// the daemon keeps running on the old one; rows already queued are left alone.
    async fn reload(&mut self, trigger: Trigger) {
        notify::reloading();
        tracing::info!(?trigger, "reloading the config");
        let path: PathBuf = self.config.path.clone();
        let mode = self.mode;
        // Reading files is blocking, and a file may be anything (a FIFO swapped in for the
        // config, a token file on a hung mount): read on a blocking thread, and give up on it
        // at shutdown, so that no config input can make SIGTERM ineffective.
        let read = tokio::task::spawn_blocking(move || match config::load(&path) {
            Err(e) => Err(format!("{e}")),
            Ok(new) => match resolve_tokens(&new, mode) {
                Err(e) => Err(e.to_string()),
                Ok(secrets) => Ok((new, secrets)),
            },
        });
        let outcome = tokio::select! {
            read = read => read.unwrap_or_else(|e| Err(format!("reading the config failed: {e}"))),
            _ = self.shutdown.cancelled() => {
                tracing::warn!(?trigger, "shutting down while the config was being read; reload abandoned");
                return;
            }
        };
        match outcome {
            Err(problems) => {
                for line in problems.lines() {
                    tracing::error!("{line}");
                }
                tracing::error!(
                    ?trigger,
                    "reload rejected: still running on the previous config"
                );
                self.metrics.reload("rejected");
            }
            Ok((new, secrets)) => {
                for w in &new.warnings {
                    tracing::warn!("{w}");
                }
                if new.database != self.config.database || new.api_url != self.config.api_url {
                    if new.database != self.config.database {
                        tracing::warn!(
                            "`database` changed: restart the daemon to use the new file"
                        );
                    }
                    self.client = Client::new(&new.api_url, REQUEST_TIMEOUT);
                }
                let mut new = new;
                new.database = self.config.database.clone();
                self.apply_log_level(&new.log_level);
                self.metrics.set_token_labels(new.http.token_labels);
                self.apply_http(new.http.listen).await;
                self.config = new;
                // The purge task runs at once if this changed what it keeps.
                let retention = Retention::of(&self.config);
                self.retention
                    .send_if_modified(|r| std::mem::replace(r, retention) != retention);
                let applied = async {
                    self.apply_tokens(&secrets).await?;
                    fail_removed(&self.queue, &self.config, self.clock.now()).await?;
                    self.start_scheduler(Start::Reload).await?;
                    self.start_calendars().await
                }
                .await;
                release_freed_memory();
                match applied {
                    Ok(()) => {
                        self.metrics.reload("ok");
                        tracing::info!(
                            ?trigger,
                            rules = self.config.rules.len(),
                            tokens = self.config.tokens.len(),
                            "reloaded"
                        )
                    }
                    Err(e) => {
                        self.metrics.reload("failed");
                        tracing::error!(error = %e, "reload failed on the database; retry with SIGHUP")
                    }
                }
            }
        }
        notify::reloaded(&self.status_line().await);
    }

    /// Serve `/metrics`, `/healthz` and `/readyz` on `listener`, bound for `listen`.
    fn serve_http(&mut self, listen: std::net::SocketAddr, listener: tokio::net::TcpListener) {
        let endpoints = Endpoints::new(
            self.metrics.clone(),
            self.queue.clone(),
            self.clock.clone(),
            self.next_firing.clone(),
        );
        match Server::start(listener, endpoints) {
            Ok(server) => {
                tracing::info!(address = %server.addr, "serving /metrics, /healthz and /readyz on http://{}", server.addr);
                self.http = Some((listen, server));
            }
            Err(e) => tracing::error!(error = %e, "[http] listen {listen}: cannot serve"),
        }
    }

    /// Follow a reloaded `[http] listen`: a new address is bound first and the old server
    /// stopped only once it is; one that cannot be bound leaves the old server running.
    async fn apply_http(&mut self, listen: Option<std::net::SocketAddr>) {
        let current = self.http.as_ref().map(|(addr, _)| *addr);
        if listen == current {
            return;
        }
        let Some(addr) = listen else {
            if let Some((_, server)) = self.http.take() {
                server.stop().await;
                tracing::info!("[http] listen removed: the /metrics server stopped");
            }
            return;
        };
        let mut bound = observe::bind(addr).await;
        // A new address on the old port (127.0.0.1 to [::1], say) can only be bound once the
        // old server lets go of the port; if it still cannot be, the old address is taken
        // back.
        let same_port = self.http.as_ref().map(|(_, s)| s.addr.port()) == Some(addr.port());
        if matches!(&bound, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse) && same_port {
            if let Some((old_listen, server)) = self.http.take() {
                let old_addr = server.addr;
                server.stop().await;
                bound = observe::bind(addr).await;
                if bound.is_err() {
                    match observe::bind(old_addr).await {
                        Ok(listener) => self.serve_http(old_listen, listener),
                        Err(e) => {
                            tracing::error!(error = %e, "[http] cannot listen on {old_addr} again; no /metrics server runs")
                        }
                    }
                }
            }
        }
        match bound {
            Ok(listener) => {
                if let Some((_, server)) = self.http.take() {
                    server.stop().await;
                }
                self.serve_http(addr, listener);
            }
            Err(e) => {
                let old = self
                    .http
                    .as_ref()
                    .map_or("no server runs".to_string(), |(_, s)| {
                        format!("the server on {} stays", s.addr)
                    });
                tracing::error!(error = %e, "[http] listen {addr}: cannot listen there; {old}");
            }
        }
    }

    /// Put a reloaded `log_level` in force if it differs from the current one. The change is
    /// logged before the switch, so that the last line under the old filter says what changed.
    fn apply_log_level(&self, level: &str) {
        let old = self.config.log_level.as_str();
        if level == old {
            return;
        }
        tracing::info!(from = old, to = level, "log_level changed");
        match self.log_filter.apply(level) {
            Applied::Now => {}
            Applied::Overridden => tracing::info!(
                "RUST_LOG is set and overrides log_level; unset it in the service's environment to use log_level"
            ),
            Applied::Invalid(e) => tracing::warn!(
                "log_level {level:?} is not a valid filter ({e}); still logging at {old:?}; write e.g. \"info\" or \"warn,slack_statusd=debug\""
            ),
        }
    }

    /// "3 rules, next firing 09:00 Europe/Berlin, 0 pending".
    async fn status_line(&self) -> String {
        let pending = self.queue.count(State::Pending).await.unwrap_or(0);
        let next = match *self.next_firing.borrow() {
            Some(at) => {
                let local = at.with_timezone(&self.config.timezone);
                format!(
                    "next firing {} {}",
                    local.format("%Y-%m-%d %H:%M:%S"),
                    self.config.timezone
                )
            }
            None => "no firing scheduled".to_string(),
        };
        format!(
            "{} rules, {next}, {pending} pending",
            self.config.rules.len()
        )
    }
}

async fn fail_removed(
    queue: &Queue,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(), QueueError> {
    let known: Vec<String> = config.tokens.keys().cloned().collect();
    let removed = queue.fail_removed_tokens(&known, now).await?;
    if removed > 0 {
        tracing::warn!(
            rows = removed,
            "rows of tokens no longer in the config failed (token_removed)"
        );
    }
    Ok(())
}

/// Stop one task and wait for it (its in-flight request gets the worker's drain time).
async fn stop(token: CancellationToken, task: JoinHandle<()>) {
    token.cancel();
    let _ = task.await;
}

/// Each token's worker wake-up, by token name, shared with the scheduler, the calendars and
/// the external-change watcher; a reload publishes the new workers' in place.
pub type Wakers = Arc<std::sync::Mutex<HashMap<String, Arc<Notify>>>>;

/// What the purge keeps: finished rows for `retention`, request starts for the limits'
/// window (the throttle rebuilds its windows from them after a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retention {
    /// `retention`.
    rows: Duration,
    /// `[limits] window`.
    sends: Duration,
}

impl Retention {
    fn of(config: &Config) -> Retention {
        Retention {
            rows: config.retention,
            sends: config.limits.window,
        }
    }
}

/// Delete finished rows older than `retention`, once an hour and whenever a reload changes
/// what to keep (read from `retention`, which the supervisor updates).
async fn purge(
    queue: Queue,
    clock: Clock,
    mut retention: watch_chan::Receiver<Retention>,
    shutdown: CancellationToken,
) {
    loop {
        let now = clock.now();
        let Retention { rows, sends } = *retention.borrow_and_update();
        let keep = TimeDelta::from_std(rows).unwrap_or(TimeDelta::MAX);
        let window = TimeDelta::from_std(sends).unwrap_or(TimeDelta::MAX);
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
        // The first purge follows start-up's writes (a mark per rule), the others come every
        // hour: free the writer's cache now, rather than have the idle daemon woken a few
        // seconds later to do it.
        queue.release_memory().await;
        tokio::select! {
            _ = tokio::time::sleep(PURGE_EVERY) => {}
            // An error means the supervisor is gone; the branch is then disabled and
            // shutdown ends the task.
            Ok(()) = retention.changed() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
