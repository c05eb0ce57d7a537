//! The one writer: a task that owns the queue's write connection and runs every write.
//!
//! SQLite allows one writer at a time anyway. Instead of callers taking turns at a shared
//! connection, each write is a message on a channel; the writer task drains everything that
//! is waiting (`recv_many`), runs all waiting finishes as one transaction and all waiting
//! claims as another (group commit: when a thousand tokens fire at once, one commit serves
//! them all), then every other write in its own transaction, and answers each caller through
//! its own oneshot. sqlx's own SQLite driver is built the same way
//! (`sqlx-sqlite/src/connection/worker.rs`).
//!
//! Three rules keep the database and the rows honest whatever fails:
//!
//! - **Every unit of work is one `BEGIN IMMEDIATE … COMMIT`**, and a caller hears `Ok` only
//!   after its `COMMIT` succeeded. A claim and the writes that follow it (finishing rows with
//!   nothing to send) are one transaction, so a failure leaves no row `in_flight`.
//! - **After any failure the connection is put back in a clean state**: `ROLLBACK` always
//!   runs (SQLite may or may not have rolled back by itself after `SQLITE_FULL`), a `BEGIN`
//!   that finds a transaction still open rolls it back first, and a connection that broke is
//!   opened again. A full disk is therefore an error for the writes that hit it, and the next
//!   write after space returns simply works.
//! - **A claim whose caller is gone is undone**: if its answer cannot be delivered (the caller
//!   was dropped), its rows go straight back to `pending` in a transaction of their own.
//!
//! What the writer cannot get past — a database that is corrupt, read-only, not a database,
//! or a file deleted or replaced under the running daemon — is *fatal*: every later write
//! fails with that reason and [`Health::fatal`] fires, so that the daemon exits 2 and systemd
//! restarts it instead of it staying up without firing.

use std::future::Future;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::{Connection as _, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::batch::{claim_all, finish_all, ClaimOp, FinishOp};
use super::{connect_options, Claim, QueueError};

/// A boxed future that may borrow for `'a`.
pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A write that runs inside a transaction the writer opens and commits.
pub(super) type WriteFn<T> = Box<
    dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, QueueError>> + Send,
>;

/// Where one answer goes.
type Reply<T> = oneshot::Sender<Result<T, QueueError>>;

/// How many waiting operations one round of the writer takes at most.
const BATCH: usize = 4096;

/// Depth of the channel: callers wait (in order) once this many writes are queued.
const CHANNEL: usize = 8192;

/// How long the writer waits after its last write before it frees its page cache. SQLite
/// keeps every page the connection read or wrote, up to `cache_size` (2 MB), for as long as
/// the connection lives: after a calendar is applied or a thousand rows are claimed, an idle
/// daemon would hold them for good (issue 12, BENCHMARKS.md 5c). Busy, the writer is never
/// quiet this long and its cache stays warm; idle, this is one wake-up after a burst of
/// writes, not a poll.
const QUIET: Duration = Duration::from_secs(5);

/// A write waiting for the writer.
pub(super) enum Op {
    /// Claim a target's rows (gathered with the other waiting claims).
    Claim(ClaimOp, Reply<Claim>),
    /// Record a request's outcome (gathered with the other waiting finishes).
    Finish(Box<FinishOp>, Reply<()>),
    /// Any other write, in a transaction of its own.
    Job(Box<dyn Job>),
    /// Free the page cache now, after the round's writes (see [`Writer::free_cache`]).
    FreeCache(oneshot::Sender<()>),
    /// Close the connection (checkpointing the WAL) and stop.
    Close(oneshot::Sender<()>),
}

/// Work that runs inside a transaction.
pub(super) trait Work: Send {
    /// Run the statements; the writer commits if this returns `Ok`.
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> BoxFuture<'c, Result<(), QueueError>>;

    /// Whether the statements open and commit the transaction themselves (`BEGIN IMMEDIATE`
    /// fused into the first statement's round trip and `COMMIT` into the last's), so that a
    /// hot write costs no extra round trips to SQLite's thread. The writer still rolls back
    /// after an error.
    fn owns_transaction(&self) -> bool {
        false
    }
}

/// A [`Work`] with a caller waiting for its answer.
pub(super) trait Job: Work {
    /// Answer the caller: `Ok` only once the transaction committed.
    fn answer(self: Box<Self>, outcome: Result<(), QueueError>);
}

/// One [`WriteFn`] and its caller.
struct Once<T> {
    work: Option<WriteFn<T>>,
    value: Option<T>,
    reply: Reply<T>,
    /// See [`Work::owns_transaction`].
    owns_transaction: bool,
}

impl<T: Send> Work for Once<T> {
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> BoxFuture<'c, Result<(), QueueError>> {
        Box::pin(async move {
            let work = self.work.take().ok_or(QueueError::Interrupted)?;
            self.value = Some(work(conn).await?);
            Ok(())
        })
    }

    fn owns_transaction(&self) -> bool {
        self.owns_transaction
    }
}

impl<T: Send> Job for Once<T> {
    fn answer(self: Box<Self>, outcome: Result<(), QueueError>) {
        let Once { value, reply, .. } = *self;
        let _ = reply.send(outcome.and_then(|()| value.ok_or(QueueError::Interrupted)));
    }
}

/// Waiting finishes, recorded together.
struct Finishes<'a>(&'a [FinishOp]);

impl Work for Finishes<'_> {
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> BoxFuture<'c, Result<(), QueueError>> {
        Box::pin(finish_all(conn, self.0))
    }

    fn owns_transaction(&self) -> bool {
        true
    }
}

/// Waiting claims, run together; `claimed` holds each one's result once it ran.
struct Claims<'a> {
    ops: &'a [ClaimOp],
    claimed: Vec<Claim>,
}

impl Work for Claims<'_> {
    fn run<'c>(
        &'c mut self,
        conn: &'c mut SqliteConnection,
    ) -> BoxFuture<'c, Result<(), QueueError>> {
        Box::pin(async move {
            self.claimed = claim_all(conn, self.ops).await?;
            Ok(())
        })
    }

    fn owns_transaction(&self) -> bool {
        true
    }
}

/// The handle callers hold: sends writes to the writer task.
#[derive(Debug, Clone)]
pub(super) struct Handle {
    tx: mpsc::Sender<Op>,
    health: Arc<Health>,
}

impl Handle {
    /// Start the writer task on `conn`, the connection to `path`.
    pub(super) fn start(conn: SqliteConnection, path: &Path) -> Handle {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let health = Arc::new(Health::new(path));
        let writer = Writer {
            conn: Some(conn),
            health: health.clone(),
        };
        tokio::spawn(writer.run(rx));
        Handle { tx, health }
    }

    /// Run `work` in a transaction of its own; its value once committed.
    pub(super) async fn run<T: Send + 'static>(&self, work: WriteFn<T>) -> Result<T, QueueError> {
        self.job(work, false).await
    }

    /// Run `work`, whose statements open and commit their transaction themselves (see
    /// [`Work::owns_transaction`]); its value once committed.
    pub(super) async fn run_own<T: Send + 'static>(
        &self,
        work: WriteFn<T>,
    ) -> Result<T, QueueError> {
        self.job(work, true).await
    }

    async fn job<T: Send + 'static>(
        &self,
        work: WriteFn<T>,
        owns_transaction: bool,
    ) -> Result<T, QueueError> {
        let (reply, answer) = oneshot::channel();
        let job = Once {
            work: Some(work),
            value: None,
            reply,
            owns_transaction,
        };
        self.send(Op::Job(Box::new(job)), answer).await
    }

    /// Send `op` and wait for its answer.
    pub(super) async fn send<T>(
        &self,
        op: Op,
        answer: oneshot::Receiver<Result<T, QueueError>>,
    ) -> Result<T, QueueError> {
        if self.tx.send(op).await.is_err() {
            return Err(self.health.closed_error());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(self.health.closed_error()))
    }

    /// Free the write connection's page cache now rather than after [`QUIET`], once the
    /// writes sent before are done: for a caller that knows a burst of writes is over, so
    /// that an idle daemon is not woken later to do it.
    pub(super) async fn free_cache(&self) {
        let (done, freed) = oneshot::channel();
        if self.tx.send(Op::FreeCache(done)).await.is_ok() {
            let _ = freed.await;
        }
    }

    /// Close the connection and stop the writer; later writes fail with
    /// [`QueueError::Interrupted`].
    pub(super) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.tx.send(Op::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }

    /// The writer's view of the database's health.
    pub(super) fn health(&self) -> &Arc<Health> {
        &self.health
    }
}

/// What the writer knows of the database file's fate, shared with every [`Handle`].
#[derive(Debug)]
pub struct Health {
    /// The database file.
    path: PathBuf,
    /// Device and inode of the file when it was opened: a different one, or none, means the
    /// file was deleted or replaced under us, and our writes would go to a ghost.
    identity: Option<(u64, u64)>,
    /// Cancelled once the database cannot be used any more.
    fatal: CancellationToken,
    /// Why, once `fatal` is cancelled.
    reason: Mutex<Option<String>>,
    /// Notified after each committed write: the daemon refreshes what it reports then, and
    /// only then, so that an idle daemon does not wake to report nothing new.
    written: tokio::sync::Notify,
    /// Notified when the writer has freed its page cache after a quiet spell (see [`QUIET`]).
    quiet: tokio::sync::Notify,
}

impl Health {
    pub(super) fn new(path: &Path) -> Health {
        Health {
            path: path.to_path_buf(),
            identity: file_identity(path),
            fatal: CancellationToken::new(),
            reason: Mutex::new(None),
            written: tokio::sync::Notify::new(),
            quiet: tokio::sync::Notify::new(),
        }
    }

    /// Notified after a write commits (a permit is kept if nobody waits).
    pub fn written(&self) -> &tokio::sync::Notify {
        &self.written
    }

    /// Notified when the writer, quiet for a few seconds after writing, has freed the pages
    /// SQLite cached for it (a permit is kept if nobody waits): the memory is free, and the
    /// daemon can give it back to the OS.
    pub fn quiet(&self) -> &tokio::sync::Notify {
        &self.quiet
    }

    /// Cancelled once the database cannot be used any more (see [`Health::fatal_error`]).
    pub fn fatal(&self) -> &CancellationToken {
        &self.fatal
    }

    /// The fatal error, if there was one.
    pub fn fatal_error(&self) -> Option<QueueError> {
        let reason = self
            .reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        reason.map(|reason| QueueError::Fatal {
            path: self.path.clone(),
            reason,
        })
    }

    /// Check that the file we opened is still the file at our path; if not, the database is
    /// unusable from now on.
    pub fn check_file(&self) -> Result<(), QueueError> {
        if let Some(e) = self.fatal_error() {
            return Err(e);
        }
        if self.identity.is_some() && file_identity(&self.path) != self.identity {
            self.declare_fatal(
                "the file was deleted or replaced while the daemon ran (rows written since went \
                 to the old file)"
                    .to_string(),
            );
            return Err(self.fatal_error().expect("just declared"));
        }
        Ok(())
    }

    /// From now on the database is unusable, for `reason`.
    pub(super) fn declare_fatal(&self, reason: String) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            tracing::error!(database = %self.path.display(), "{reason}");
            *slot = Some(reason);
        }
        drop(slot);
        self.fatal.cancel();
    }

    /// The error for a write that reached no writer: the fatal one, or "closed".
    fn closed_error(&self) -> QueueError {
        self.fatal_error().unwrap_or(QueueError::Interrupted)
    }
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The writer task's state.
struct Writer {
    /// The connection; `None` after it broke, until it is opened again.
    conn: Option<SqliteConnection>,
    health: Arc<Health>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        let mut ops = Vec::with_capacity(64);
        // Whether the connection has worked since its cache was last freed.
        let mut used = false;
        loop {
            let received = if used {
                // `recv_many` is cancel safe: a timeout loses no operation.
                match tokio::time::timeout(QUIET, rx.recv_many(&mut ops, BATCH)).await {
                    Ok(n) => n,
                    Err(_) => {
                        self.free_cache().await;
                        used = false;
                        continue;
                    }
                }
            } else {
                rx.recv_many(&mut ops, BATCH).await
            };
            if received == 0 {
                break;
            }
            used = true;
            let mut claims = Vec::new();
            let mut finishes = Vec::new();
            let mut jobs = Vec::new();
            let mut free_cache = Vec::new();
            let mut close = None;
            for op in ops.drain(..) {
                match op {
                    Op::Claim(op, reply) => claims.push((op, reply)),
                    Op::Finish(op, reply) => finishes.push((*op, reply)),
                    Op::Job(job) => jobs.push(job),
                    Op::FreeCache(done) => free_cache.push(done),
                    Op::Close(done) => close = Some(done),
                }
            }
            // Once per round, not per transaction: a file deleted or replaced under us makes
            // every write of the round fail as fatal.
            let _ = self.health.check_file();
            // Finishes first: they free targets and record sends the claims' callers count on.
            if !finishes.is_empty() {
                self.finishes(finishes).await;
            }
            if !claims.is_empty() {
                self.claims(claims).await;
            }
            for mut job in jobs {
                let outcome = self.unit(job.as_mut()).await;
                job.answer(outcome);
            }
            // After the round's writes, which would fill the cache again.
            if !free_cache.is_empty() {
                self.free_cache().await;
                used = false;
                for done in free_cache {
                    let _ = done.send(());
                }
            }
            if let Some(done) = close {
                if let Some(conn) = self.conn.take() {
                    let _ = conn.close().await;
                }
                let _ = done.send(());
                return;
            }
        }
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }

    /// Free the connection's page cache (`PRAGMA shrink_memory`, outside any transaction) and
    /// say so. The next write reads what it needs again, from the OS's cache. A connection
    /// that broke has no cache to free; a failure frees nothing and harms nothing.
    async fn free_cache(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            let _ = sqlx::query("PRAGMA shrink_memory").execute(conn).await;
        }
        self.health.quiet.notify_one();
    }

    /// Record every waiting finish in one transaction; if that fails, each on its own, so
    /// that one bad operation fails only its own caller.
    async fn finishes(&mut self, waiting: Vec<(FinishOp, Reply<()>)>) {
        let (ops, replies): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
        match self.unit(&mut Finishes(&ops)).await {
            Ok(()) => replies.into_iter().for_each(|r| drop(r.send(Ok(())))),
            Err(e) if ops.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(_) => {
                for (op, reply) in ops.iter().zip(replies) {
                    let alone = self.unit(&mut Finishes(std::slice::from_ref(op))).await;
                    let _ = reply.send(alone);
                }
            }
        }
    }

    /// Run every waiting claim in one transaction (if that fails, each on its own) and hand
    /// each caller its own rows; rows whose caller has gone go back to `pending`.
    async fn claims(&mut self, waiting: Vec<(ClaimOp, Reply<Claim>)>) {
        let (ops, replies): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
        let mut results: Vec<Result<Claim, QueueError>> = Vec::with_capacity(ops.len());
        let mut together = Claims {
            ops: &ops,
            claimed: Vec::new(),
        };
        match self.unit(&mut together).await {
            Ok(()) => results.extend(together.claimed.into_iter().map(Ok)),
            Err(e) if ops.len() == 1 => results.push(Err(e)),
            Err(_) => {
                for op in &ops {
                    let mut alone = Claims {
                        ops: std::slice::from_ref(op),
                        claimed: Vec::new(),
                    };
                    results.push(match self.unit(&mut alone).await {
                        Ok(()) => Ok(alone.claimed.pop().unwrap_or(Claim::NotReady)),
                        Err(e) => Err(e),
                    });
                }
            }
        }
        let mut orphans = Vec::new();
        for ((reply, result), op) in replies.into_iter().zip(results).zip(&ops) {
            if let Err(Ok(Claim::Send(batch) | Claim::NothingToSend(batch))) = reply.send(result) {
                orphans.push(FinishOp::requeue(&batch, op.now));
            }
        }
        if !orphans.is_empty() {
            // Nobody will send these rows: put them back now, not at the next restart, so that
            // newer rows of their targets cannot overtake them.
            if let Err(e) = self.unit(&mut Finishes(&orphans)).await {
                tracing::error!(error = %e, "cannot put back the rows of a claim whose caller went away; they go back to pending at the next start");
            }
        }
    }

    /// Run `work` in one `BEGIN IMMEDIATE … COMMIT`. On any failure the transaction is rolled
    /// back and the connection left clean; the error names the database.
    async fn unit(&mut self, work: &mut (dyn Work + '_)) -> Result<(), QueueError> {
        if let Some(e) = self.health.fatal_error() {
            return Err(e);
        }
        let outcome = self.transaction(work).await;
        match &outcome {
            Ok(()) => self.health.written.notify_one(),
            Err(e) => {
                if let Some(reason) = e.fatal_reason() {
                    self.health.declare_fatal(reason);
                }
            }
        }
        outcome.map_err(|e| e.at(&self.health.path))
    }

    async fn transaction(&mut self, work: &mut (dyn Work + '_)) -> Result<(), QueueError> {
        let owns = work.owns_transaction();
        let conn = self.connection().await?;
        if owns {
            let outcome = work.run(conn).await;
            if let Err(e) = &outcome {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                if !matches!(e, QueueError::Sql(sqlx::Error::Database(_))) {
                    // Not SQLite's answer but a broken connection: open a new one next time.
                    self.conn = None;
                }
            }
            return outcome;
        }
        if let Err(e) = begin(conn).await {
            if !matches!(&e, QueueError::Sql(sqlx::Error::Database(_))) {
                // Not SQLite's answer but a broken connection: open a new one next time.
                self.conn = None;
            }
            return Err(e);
        }
        let outcome = match work.run(conn).await {
            Ok(()) => sqlx::query("COMMIT")
                .execute(&mut *conn)
                .await
                .map(drop)
                .map_err(QueueError::from),
            Err(e) => Err(e),
        };
        if outcome.is_err() {
            // Always: SQLite rolls back by itself after some errors (a full disk among them)
            // and not after others; a ROLLBACK with nothing to roll back fails harmlessly.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        }
        outcome
    }

    /// The connection, opened again if it broke.
    async fn connection(&mut self) -> Result<&mut SqliteConnection, QueueError> {
        if self.conn.is_none() {
            let conn = SqliteConnection::connect_with(&connect_options(&self.health.path)).await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just opened"))
    }
}

/// `BEGIN IMMEDIATE`; if a transaction is somehow still open on the connection, roll it back
/// and begin again rather than fail every write from now on.
async fn begin(conn: &mut SqliteConnection) -> Result<(), QueueError> {
    match sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("within a transaction") => {
            sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
