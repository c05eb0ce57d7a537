//! The durable queue of profile updates in SQLite. The only module that contains SQL.
//!
//! Every firing becomes a row here before anything is sent. A row moves
//! `pending → in_flight → sent | failed | superseded | expired`, or back to `pending` for a
//! retry; `held` rows wait for their token to be fixed. Reads share a pool of connections;
//! every write is a message to the one writer task (`writer.rs`), which owns the write
//! connection and runs each write in a `BEGIN IMMEDIATE` transaction (a deferred
//! read-then-write transaction would fail with `SQLITE_BUSY` instead of waiting for another
//! process's writer, the CLI), gathering concurrent claims and finishes into shared ones
//! (`batch.rs`). A write reports success only once it is committed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, Row as _, SqliteConnection, SqlitePool};
use tokio::sync::oneshot;

use crate::profile::Patch;
use crate::throttle::Method;

mod ahead;
mod backend;
mod batch;
mod calendar;
mod depth;
mod error;
pub mod lease;
mod merge;
mod model;
pub mod postgres;
mod restore;
mod writer;

pub use ahead::{CONFIG_CHANGED, MISSED};
pub use backend::Queue;
pub use calendar::{CalendarCopy, CalendarFiring, CalendarRow, ShownRow, CALENDAR_CHANGED};
pub use depth::Depth;
pub use error::QueueError;
pub use merge::{merge, MergeInput, MergePlan};
pub use model::{
    Advance, Batch, Claim, Finish, LastSend, NewUpdate, ReadyTarget, RuleMark, State, Target,
    TokenSummary, Update,
};
pub use restore::{LeaveRestore, SavedRestore, WaitingRestore};
pub use writer::Health;

/// A statement with its arguments still to bind.
type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Handle to the queue database. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct SqliteQueue {
    /// Readers (`queue list`, the workers' look for ready targets) share these connections.
    pool: SqlitePool,
    /// The writer task, which owns the one connection that writes. SQLite allows one writer
    /// at a time anyway: a channel, drained in order, beats SQLite's busy handler, which
    /// sleeps up to 100 ms between tries, and lets concurrent claims share one commit.
    writer: writer::Handle,
    /// The database file.
    path: PathBuf,
}

/// The page cache of each reader connection, in KiB (SQLite's default is 2,000 KiB). A
/// reader's cache hardly ever serves a second read: in WAL mode a connection drops its whole
/// cache when it begins a read and finds the database changed, and the writer commits between
/// nearly every two reads. At the default, SQLite held 6–14 MB in an idle daemon with 10
/// calendars, most of it in the caches of the (up to eight) readers, against 3.5 MB at 64 KiB
/// (issue 12, BENCHMARKS.md 5c). The writer keeps the default: its cache survives its own
/// commits.
const READER_CACHE_KIB: u32 = 64;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or(DateTime::UNIX_EPOCH)
}

const ROW_COLUMNS: &str =
    "id, rule, calendar, token, user, fire_at, patch, respect_manual, state, attempts, \
     last_error, not_before, created_at, updated_at, restore, saved, parent";

/// Per target, rows go out in this order: by firing instant, a firing before a restore at an
/// equal instant (SPEC §6), then as enqueued.
const FIRING_ORDER: &str = "fire_at, saved IS NOT NULL, id";

/// A row of either backend that the shared decoding below can read: every column it reads is
/// text or a 64-bit integer (PostgreSQL's statements cast JSONB to text and booleans to
/// integers, and name `target_user` `user`), so one decoding serves both.
pub(crate) trait ReadRow: sqlx::Row {
    /// Column `name` as `T`.
    fn col<T>(&self, name: &str) -> Result<T, sqlx::Error>
    where
        T: for<'r> sqlx::Decode<'r, Self::Database> + sqlx::Type<Self::Database>;
}

impl<R: sqlx::Row> ReadRow for R
where
    for<'n> &'n str: sqlx::ColumnIndex<R>,
{
    fn col<T>(&self, name: &str) -> Result<T, sqlx::Error>
    where
        T: for<'r> sqlx::Decode<'r, Self::Database> + sqlx::Type<Self::Database>,
    {
        self.try_get(name)
    }
}

/// The target of a row read with its `token` and `user` columns.
fn row_target<R>(r: &R) -> Result<Target, QueueError>
where
    R: ReadRow,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let user: String = r.col("user")?;
    Ok(Target {
        token: r.col("token")?,
        user: (!user.is_empty()).then_some(user),
    })
}

/// A row of `sends` read as `method, user, started_at`: method, user (`None`: the token's own
/// profile), start.
fn send_row<R>(r: &R) -> Result<(String, Option<String>, DateTime<Utc>), QueueError>
where
    R: ReadRow,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let user: String = r.col("user")?;
    Ok((
        r.col("method")?,
        (!user.is_empty()).then_some(user),
        from_ms(r.col("started_at")?),
    ))
}

/// A row read with [`ROW_COLUMNS`].
fn row_to_update<R>(r: &R) -> Result<Update, QueueError>
where
    R: ReadRow,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: i64 = r.col("id")?;
    let patch_text: String = r.col("patch")?;
    let patch =
        serde_json::from_str(&patch_text).map_err(|source| QueueError::BadPatch { id, source })?;
    let state: String = r.col("state")?;
    let attempts: i64 = r.col("attempts")?;
    let saved: Option<String> = r.col("saved")?;
    let saved = saved.map(|s| restore::parse_saved(id, &s)).transpose()?;
    Ok(Update {
        id,
        rule: r.col("rule")?,
        calendar: r.col("calendar")?,
        target: row_target(r)?,
        fire_at: from_ms(r.col("fire_at")?),
        patch,
        respect_manual: r.col::<i64>("respect_manual")? != 0,
        restore: r.col::<i64>("restore")? != 0,
        saved,
        parent: r.col("parent")?,
        state: state.parse().unwrap_or(State::Failed),
        attempts: attempts.try_into().unwrap_or(0),
        last_error: r.col("last_error")?,
        not_before: from_ms(r.col("not_before")?),
        created_at: from_ms(r.col("created_at")?),
        updated_at: from_ms(r.col("updated_at")?),
    })
}

impl SqliteQueue {
    /// Open (and, with `create`, create) the database at `path` and apply migrations.
    ///
    /// Durability is chosen on purpose (ARCHITECTURE.md, "Durability"): WAL, so readers (the
    /// CLI) never block the worker, and `synchronous = NORMAL`: every commit survives a process
    /// crash; a power loss can lose the last commits, which only ever repeats an idempotent
    /// request or re-applies a firing through catch-up — and a thousand tokens firing at once
    /// are not serialised behind a thousand fsyncs.
    pub async fn open(path: &Path, create: bool) -> Result<SqliteQueue, QueueError> {
        if !create {
            match std::fs::metadata(path) {
                Err(_) => return Err(QueueError::Missing(path.to_path_buf())),
                // SQLite takes an empty file for a new database; only `run` may create one.
                Ok(m) if m.is_file() && m.len() == 0 => {
                    return Err(QueueError::Empty(path.to_path_buf()))
                }
                Ok(_) => {}
            }
        }
        if create {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| QueueError::Open {
                    path: path.to_path_buf(),
                    source: sqlx::Error::Io(e),
                })?;
            }
        }
        let options = connect_options(path)
            .create_if_missing(create)
            .pragma("cache_size", format!("-{READER_CACHE_KIB}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(15))
            .connect_with(options)
            .await
            .map_err(|source| QueueError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| migrate_error(source, path.to_path_buf()))?;
        let writer = SqliteConnection::connect_with(&connect_options(path))
            .await
            .map_err(|source| QueueError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(SqliteQueue {
            pool,
            writer: writer::Handle::start(writer, path),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Close the connections, checkpointing the WAL. Writes after this fail with
    /// [`QueueError::Interrupted`].
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Free the pages SQLite keeps cached for the write connection once the writes sent
    /// before are done, and notify [`Health::quiet`]. The writer does this by itself a few
    /// seconds after its last write; a caller that knows a burst of writes is over (the
    /// daemon's purge, the last write of its start and of each hour) calls this so that an
    /// idle daemon is not woken for it later.
    pub async fn release_memory(&self) {
        self.writer.free_cache().await;
    }

    /// Whether the database can still be used: [`Health::fatal`] fires once it cannot (the
    /// file was deleted or replaced, or it turned corrupt or read-only), and the daemon exits.
    pub fn health(&self) -> &Arc<Health> {
        self.writer.health()
    }

    /// One statement, its arguments bound by `bind`, in a transaction of the writer's; how
    /// many rows it changed, once committed.
    async fn write_one<F>(&self, sql: &'static str, bind: F) -> Result<u64, QueueError>
    where
        F: for<'q> FnOnce(SqliteQuery<'q>) -> SqliteQuery<'q> + Send + 'static,
    {
        self.write(Box::new(move |conn| {
            Box::pin(async move { Ok(bind(sqlx::query(sql)).execute(conn).await?.rows_affected()) })
        }))
        .await
    }

    /// Run `work` in a transaction of the writer's; its value once committed.
    async fn write<T: Send + 'static>(&self, work: writer::WriteFn<T>) -> Result<T, QueueError> {
        self.writer.run(work).await
    }

    /// Put rows left `in_flight` by a previous run back to `pending`: their request may or may
    /// not have reached Slack, and setting a profile is idempotent, so they are sent again.
    /// Each such request is logged as started at its claim, as a finished one would have been,
    /// so that the throttle counts it. Returns how many rows were recovered.
    pub async fn recover_in_flight(&self, now: DateTime<Utc>) -> Result<u64, QueueError> {
        self.recover_token_in_flight(None, now).await
    }

    /// [`Queue::recover_in_flight`] for the rows of one token (`None`: every token), whose
    /// worker has stopped — a reload that changed the token cut its last outcome off.
    pub async fn recover_token_in_flight(
        &self,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        let token = token.map(str::to_string);
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                // A claim stamps all rows of one request with the same `updated_at`; the
                // method is the one that sends the row's part (`Method::sending`), so that a
                // DND or presence call cut off by a crash counts in its own window.
                let claimed: Vec<(String, String, i64, String)> = sqlx::query_as(
                    "SELECT DISTINCT token, user, updated_at, patch FROM updates
                     WHERE state = 'in_flight' AND (?1 IS NULL OR token = ?1)",
                )
                .bind(&token)
                .fetch_all(&mut *conn)
                .await?;
                let starts = recovered_starts(&claimed);
                // LOG_STARTS reads its starts from `?2`.
                sqlx::query(batch::LOG_STARTS)
                    .bind(Option::<String>::None)
                    .bind(serde_json::to_string(&starts).expect("starts serialize"))
                    .execute(&mut *conn)
                    .await?;
                let done = sqlx::query(
                    "UPDATE updates SET state = 'pending', updated_at = ?2
                     WHERE state = 'in_flight' AND (?1 IS NULL OR token = ?1)",
                )
                .bind(&token)
                .bind(ms(now))
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected())
            })
        }))
        .await
    }

    /// Put `held` rows of `token` back to `pending` (its config changed, or a fresh start).
    pub async fn release_held(
        &self,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        let token = token.map(str::to_string);
        self.write_one(
            "UPDATE updates SET state = 'pending', updated_at = ?1
             WHERE state = 'held' AND (?2 IS NULL OR token = ?2)",
            move |q| q.bind(ms(now)).bind(token),
        )
        .await
    }

    /// Fail the unfinished rows of tokens that are no longer in the config, with the reason
    /// `token_removed`.
    pub async fn fail_removed_tokens(
        &self,
        known: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        let known = serde_json::to_string(known).expect("strings serialize");
        self.write_one(
            "UPDATE updates SET state = 'failed', last_error = 'token_removed', updated_at = ?1, finished_at = ?1
             WHERE state IN ('pending', 'held', 'in_flight')
               AND token NOT IN (SELECT value FROM json_each(?2))",
            move |q| q.bind(ms(now)).bind(known),
        )
        .await
    }

    /// Move `rule`'s mark forward to `until` (never backward), enqueueing `firing` in the same
    /// transaction if given. Returns the new row's id. See [`Queue::advance_rules`].
    pub async fn advance_rule(
        &self,
        rule: &str,
        until: DateTime<Utc>,
        firing: Option<&NewUpdate>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, QueueError> {
        let advance = Advance {
            rule: rule.to_string(),
            until,
            fingerprint: None,
            firing: firing.cloned(),
        };
        Ok(self.advance_rules(&[advance], now).await?.pop().flatten())
    }

    /// Move each rule's mark forward to its `until` (never backward), enqueueing its firing,
    /// all in one transaction (one commit however many rules fire at once). A firing at or
    /// before the stored mark is not enqueued again: that is what makes a firing never
    /// enqueued twice. Returns each new row's id, in order (`None`: nothing enqueued). Rule
    /// names must be distinct.
    pub async fn advance_rules(
        &self,
        advances: &[Advance],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<i64>>, QueueError> {
        // Set-based: a thousand rules firing at once, or a hundred thousand new rules at the
        // first start, are three statements, not a few round trips to SQLite's thread each.
        if advances.is_empty() {
            // A start or reload with no new rule: no transaction at all.
            return Ok(Vec::new());
        }
        let advances = advances.to_vec();
        self.write(Box::new(move |conn| {
            Box::pin(async move { advance_marks(conn, &advances, now).await })
        }))
        .await
    }

    /// Every rule's mark, by rule name.
    pub async fn rule_marks(&self) -> Result<HashMap<String, RuleMark>, QueueError> {
        let rows = sqlx::query("SELECT rule, scheduled_until, fingerprint FROM rule_marks")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let mark = RuleMark {
                    until: from_ms(r.try_get("scheduled_until")?),
                    fingerprint: r.try_get("fingerprint")?,
                };
                Ok((r.try_get("rule")?, mark))
            })
            .collect()
    }

    /// Enqueue one update outside any rule (`slack-statusd set`). Returns its (first row's)
    /// id once committed.
    pub async fn enqueue(&self, update: &NewUpdate, now: DateTime<Utc>) -> Result<i64, QueueError> {
        let (rows, counts) = firing_rows(&[(update, None)]);
        if counts != [1] {
            // Several parts to link: a transaction of the writer's.
            return self
                .write(Box::new(move |conn| {
                    Box::pin(async move { Ok(insert_rows(conn, rows, &counts, now).await?[0]) })
                }))
                .await;
        }
        // One row: one transaction in one round trip. `fetch_all` runs every statement to its
        // end, so the id is returned only once COMMIT succeeded: an id read from RETURNING
        // before a failed commit (a full disk) would name a row that never existed.
        self.writer
            .run_own(Box::new(move |conn| {
                Box::pin(async move {
                    let ids: Vec<i64> = sqlx::query_scalar(&INSERT_AND_COMMIT)
                        .bind(rows)
                        .bind(ms(now))
                        .fetch_all(conn)
                        .await?;
                    ids.first()
                        .copied()
                        .ok_or(QueueError::Sql(sqlx::Error::RowNotFound))
                })
            }))
            .await
    }

    /// Targets of `token` with pending rows, each with the instant its first row (in firing
    /// order) may go, earliest first.
    pub async fn ready_targets(&self, token: &str) -> Result<Vec<ReadyTarget>, QueueError> {
        // The first pending row per target decides: later rows must not overtake it.
        static READY: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT user, not_before FROM (
                     SELECT user, not_before,
                            row_number() OVER (PARTITION BY user ORDER BY {FIRING_ORDER}) AS n
                     FROM updates WHERE token = ? AND state = 'pending')
                 WHERE n = 1 ORDER BY not_before, user"
            )
        });
        let rows = sqlx::query(&READY)
            .bind(token)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let user: String = r.try_get("user")?;
                Ok(ReadyTarget {
                    target: Target {
                        token: token.to_string(),
                        user: (!user.is_empty()).then_some(user),
                    },
                    ready_at: from_ms(r.try_get("not_before")?),
                })
            })
            .collect()
    }

    /// Claim every due pending row of `target` for one request, if its first row (in firing
    /// order) is due at `now`: the rows become `in_flight` until [`Queue::finish`] — with
    /// [`Finish::NotSent`] for [`Claim::NothingToSend`]. Concurrent claims share one `UPDATE … RETURNING` (see
    /// `queue/batch.rs`).
    pub async fn claim(&self, target: &Target, now: DateTime<Utc>) -> Result<Claim, QueueError> {
        let (reply, answer) = oneshot::channel();
        let op = batch::ClaimOp {
            target: target.clone(),
            now,
        };
        self.writer.send(writer::Op::Claim(op, reply), answer).await
    }

    /// Record how the request for `batch` ended (from [`Claim::Send`], or
    /// [`Finish::NotSent`] for [`Claim::NothingToSend`]), and, unless it was
    /// [`Finish::NotSent`], that a request started at `started_at` (the throttle rebuilds its
    /// windows from these after a restart).
    pub async fn finish(
        &self,
        batch: &Batch,
        outcome: &Finish,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        if batch.rows.is_empty() && batch.unreadable.is_empty() && batch.released.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let op = batch::FinishOp::new(batch, outcome.clone(), started_at, now);
        self.writer
            .send(writer::Op::Finish(Box::new(op), reply), answer)
            .await
    }

    /// Start times of requests by `token` at or after `since`, each with its method's name
    /// and its user (`None` for the token's own profile), oldest first: the throttle rebuilds
    /// its windows from these.
    pub async fn sends_since(
        &self,
        token: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, Option<String>, DateTime<Utc>)>, QueueError> {
        let rows = sqlx::query(
            "SELECT method, user, started_at FROM sends WHERE token = ? AND started_at >= ?
             ORDER BY started_at, id",
        )
        .bind(token)
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(send_row).collect()
    }

    /// Rows, newest first; only those in `states` when it is not empty.
    pub async fn list(&self, states: &[State]) -> Result<Vec<Update>, QueueError> {
        let names = serde_json::to_string(&states.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            .expect("strings serialize");
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM updates
             WHERE ?1 = '[]' OR state IN (SELECT value FROM json_each(?1))
             ORDER BY id DESC"
        );
        let rows = sqlx::query(&sql).bind(names).fetch_all(&self.pool).await?;
        rows.iter().map(row_to_update).collect()
    }

    /// One row by id.
    pub async fn get(&self, id: i64) -> Result<Option<Update>, QueueError> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM updates WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_update).transpose()
    }

    /// Delete finished rows whose `finished_at` is before `before`, and request-start records
    /// before `sends_before`. Returns the number of rows deleted.
    pub async fn purge(
        &self,
        before: DateTime<Utc>,
        sends_before: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "DELETE FROM updates WHERE finished_at IS NOT NULL AND finished_at < ?
                       AND state NOT IN ('pending', 'in_flight', 'held')",
                )
                .bind(ms(before))
                .execute(&mut *conn)
                .await?;
                sqlx::query("DELETE FROM sends WHERE started_at < ?")
                    .bind(ms(sends_before))
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected())
            })
        }))
        .await
    }

    /// A watcher holding one connection of its own: `PRAGMA data_version` is per connection.
    pub async fn change_watcher(&self) -> Result<ChangeWatcher, QueueError> {
        let mut conn = self.pool.acquire().await?;
        let last = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut *conn)
            .await?;
        Ok(ChangeWatcher { conn, last })
    }

    /// Put a finished-but-not-sent row (failed, held, skipped, expired, superseded) back to
    /// `pending`, with its attempts reset — and so the firing's other parts that did not go
    /// out (its DND and presence rows, `parent = id`): a retry resends only what failed, never
    /// a part that was sent. Returns whether a row changed.
    pub async fn retry(&self, id: i64, now: DateTime<Utc>) -> Result<bool, QueueError> {
        let changed = self
            .write_one(
                "UPDATE updates SET state = 'pending', attempts = 0, not_before = ?2, updated_at = ?2,
                     finished_at = NULL
                 WHERE (id = ?1 OR parent = ?1)
                   AND state IN ('failed', 'held', 'skipped', 'expired', 'superseded')",
                move |q| q.bind(id).bind(ms(now)),
            )
            .await?;
        Ok(changed >= 1)
    }

    /// Delete a row that is not in flight. Returns whether a row was deleted.
    pub async fn drop_row(&self, id: i64) -> Result<bool, QueueError> {
        let deleted = self
            .write_one(
                "DELETE FROM updates WHERE id = ? AND state != 'in_flight'",
                move |q| q.bind(id),
            )
            .await?;
        Ok(deleted == 1)
    }

    /// How many rows are in `state`.
    pub async fn count(&self, state: State) -> Result<i64, QueueError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM updates WHERE state = ?")
                .bind(state.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Hold every pending row of `token` (it failed with `error`): rows that arrive after the
    /// token died wait with the others instead of burning requests.
    pub async fn hold_token(
        &self,
        token: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        let (token, error) = (token.to_string(), error.to_string());
        self.write(Box::new(move |conn| {
            Box::pin(async move { hold_token(conn, &token, &error, now).await })
        }))
        .await
    }

    /// The status most recently sent to `target` by this daemon, if any: a status equal to it
    /// is ours, not one the user set by hand. A restored status is not: it counts as the
    /// user's own for `respect_manual` (SPEC §6).
    pub async fn last_sent_status(
        &self,
        target: &Target,
    ) -> Result<Option<crate::profile::Status>, QueueError> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, patch FROM updates
             WHERE token = ? AND user = ? AND state = 'sent' AND saved IS NULL
               AND json_extract(patch, '$.status') IS NOT NULL
             ORDER BY finished_at DESC, id DESC LIMIT 1",
        )
        .bind(&target.token)
        .bind(target.user_col())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some((id, text)) => {
                let p: Patch = serde_json::from_str(&text)
                    .map_err(|source| QueueError::BadPatch { id, source })?;
                Ok(p.status)
            }
        }
    }

    /// Per token named in the queue: its pending and held rows, why it is held (the error of
    /// its newest held row), and its last finished request with its outcome — what
    /// `slack-statusd status` shows. Ordered by token name.
    pub async fn token_summaries(&self) -> Result<Vec<TokenSummary>, QueueError> {
        let rows = sqlx::query(
            "SELECT token,
                    sum(state = 'pending') AS pending,
                    sum(state = 'held') AS held,
                    (SELECT h.last_error FROM updates AS h
                     WHERE h.token = u.token AND h.state = 'held'
                     ORDER BY h.updated_at DESC, h.id DESC LIMIT 1) AS held_why,
                    (SELECT json_array(l.finished_at, l.state, l.last_error) FROM updates AS l
                     WHERE l.token = u.token AND l.state IN ('sent', 'failed')
                       AND l.finished_at IS NOT NULL
                     ORDER BY l.finished_at DESC, l.id DESC LIMIT 1) AS last
             FROM updates AS u GROUP BY token ORDER BY token",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let last: Option<String> = r.try_get("last")?;
                let last = last
                    .and_then(|l| serde_json::from_str::<(i64, String, Option<String>)>(&l).ok())
                    .map(|(at, state, error)| LastSend {
                        at: from_ms(at),
                        state: state.parse().unwrap_or(State::Failed),
                        error,
                    });
                Ok(TokenSummary {
                    token: r.try_get("token")?,
                    pending: r.try_get("pending")?,
                    held: r.try_get("held")?,
                    held_why: r.try_get("held_why")?,
                    last,
                })
            })
            .collect()
    }

    /// Names of the tokens that have pending rows.
    pub async fn tokens_with_pending(&self) -> Result<Vec<String>, QueueError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT token FROM updates WHERE state = 'pending'")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

/// The statements of [`Queue::advance_rules`], inside the writer's transaction.
async fn advance_marks(
    conn: &mut SqliteConnection,
    advances: &[Advance],
    now: DateTime<Utc>,
) -> Result<Vec<Option<i64>>, QueueError> {
    let names: Vec<&str> = advances.iter().map(|a| a.rule.as_str()).collect();
    let marks: Vec<(&str, i64, Option<i64>)> = advances
        .iter()
        .map(|a| (a.rule.as_str(), ms(a.until), a.fingerprint))
        .collect();
    let stored: HashMap<String, i64> = sqlx::query(
        "SELECT rule, scheduled_until FROM rule_marks
             WHERE rule IN (SELECT value FROM json_each(?1))",
    )
    .bind(serde_json::to_string(&names).expect("names serialize"))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("rule")?, r.try_get("scheduled_until")?)))
    .collect::<Result<_, QueueError>>()?;
    // Which advances enqueue a row, and the rows in that order.
    let mut fresh_rows = Vec::new();
    let mut enqueues = Vec::with_capacity(advances.len());
    for a in advances {
        let fresh = a
            .firing
            .as_ref()
            .filter(|f| stored.get(&a.rule).is_none_or(|&mark| ms(f.fire_at) > mark));
        enqueues.push(fresh.is_some());
        fresh_rows.extend(fresh.map(|f| (f, None)));
    }
    let ids = insert_firings(conn, &fresh_rows, now).await?;
    // `WHERE true` tells the parser that ON CONFLICT belongs to the INSERT, not a join.
    sqlx::query(
        "INSERT INTO rule_marks (rule, scheduled_until, fingerprint)
             SELECT m.value ->> 0, m.value ->> 1, m.value ->> 2 FROM json_each(?1) AS m WHERE true
             ON CONFLICT (rule) DO UPDATE
                 SET scheduled_until = max(scheduled_until, excluded.scheduled_until),
                     fingerprint = coalesce(excluded.fingerprint, fingerprint)",
    )
    .bind(serde_json::to_string(&marks).expect("marks serialize"))
    .execute(&mut *conn)
    .await?;
    let mut ids = ids.into_iter();
    Ok(enqueues
        .into_iter()
        .map(|enqueued| if enqueued { ids.next() } else { None })
        .collect())
}

/// Why the migrations of the database at `path` (for PostgreSQL: its scheme and host) did
/// not apply: a newer schema than this build knows is [`QueueError::NewerSchema`].
fn migrate_error(source: sqlx::migrate::MigrateError, path: PathBuf) -> QueueError {
    match source {
        sqlx::migrate::MigrateError::VersionMissing(version) => {
            QueueError::NewerSchema { path, version }
        }
        sqlx::migrate::MigrateError::Execute(e) => QueueError::Sql(e).at(&path),
        source => QueueError::Migrate { path, source },
    }
}

/// The request starts to log for rows found `in_flight` with nobody working them — (token,
/// user, claimed-at, patch) each — as a finished request would have: one per claim (a claim
/// stamps all rows of one request with the same instant), with the method that sends the
/// row's part (`Method::sending`), so that a DND or presence call cut off counts in its own
/// window.
pub(super) fn recovered_starts(claimed: &[(String, String, i64, String)]) -> Vec<batch::Start<'_>> {
    let mut starts: Vec<batch::Start<'_>> = claimed
        .iter()
        .map(|(token, user, at, patch)| {
            // A patch edited into nonsense is counted as a profile update.
            let method = serde_json::from_str::<Patch>(patch)
                .map_or(Method::ProfileSet, |p| Method::sending(&p));
            (token.as_str(), user.as_str(), *at, method.name())
        })
        .collect();
    starts.sort_unstable();
    starts.dedup();
    starts
}

async fn hold_token(
    conn: &mut SqliteConnection,
    token: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<u64, QueueError> {
    let done = sqlx::query(
        "UPDATE updates SET state = 'held', last_error = ?3, updated_at = ?1
         WHERE token = ?2 AND state = 'pending'",
    )
    .bind(ms(now))
    .bind(token)
    .bind(format!("token failed: {error}"))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The connection settings of the queue database: WAL, `synchronous = NORMAL` (see
/// [`Queue::open`]), foreign keys, and a 10 s busy timeout. Public so that the benchmark's
/// plain-SQL reference runs with exactly the same durability.
pub fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
}

/// When a temporary `presence = "away"` in `patch` is set back to `auto` (Unix seconds): the
/// end of its status, or of its snooze.
fn back_to_auto_at(patch: &Patch) -> Option<i64> {
    if patch.presence != Some(crate::profile::Presence::Away) {
        return None;
    }
    let status_end = patch
        .status
        .as_ref()
        .map(|s| s.expiration)
        .filter(|&e| e != 0);
    let snooze_end = match patch.dnd {
        Some(crate::profile::Dnd::Snooze { until }) => Some(until),
        _ => None,
    };
    status_end.or(snooze_end)
}

/// A calendar row's own columns: its calendar, the change's key and the event's UID.
pub(super) type CalendarColumns<'a> = Option<(&'a str, &'a str, &'a str)>;

/// Insert the rows of `?1` (see [`firing_rows`]), in array order; `?2` is now.
const INSERT_ROWS: &str = "INSERT INTO updates (rule, token, user, fire_at, patch, respect_manual,
                              restore, calendar, change_key, uid, state, not_before,
                              created_at, updated_at)
         SELECT f.value ->> 0, f.value ->> 1, f.value ->> 2, f.value ->> 3, f.value ->> 4,
                f.value ->> 5, f.value ->> 6, f.value ->> 7, f.value ->> 8, f.value ->> 9,
                'pending', f.value ->> 3, ?2, ?2
         FROM json_each(?1) AS f ORDER BY f.key
         RETURNING id";

/// [`INSERT_ROWS`] as one transaction in one round trip (`slack-statusd set`).
static INSERT_AND_COMMIT: LazyLock<String> =
    LazyLock::new(|| format!("BEGIN IMMEDIATE; {INSERT_ROWS}; COMMIT"));

/// One row to insert: rule, token, user column, fire-at (Unix ms), patch (JSON text),
/// respect_manual and restore (0 or 1), calendar, change key, UID.
pub(super) type RowValues<'a> = (
    Option<&'a str>,
    &'a str,
    &'a str,
    i64,
    String,
    i64,
    i64,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// The rows of `firings` as the JSON array [`INSERT_ROWS`] reads (see [`firing_values`]),
/// with each firing's number of rows.
fn firing_rows(firings: &[(&NewUpdate, CalendarColumns<'_>)]) -> (String, Vec<usize>) {
    let (rows, counts) = firing_values(firings);
    (
        serde_json::to_string(&rows).expect("rows serialize"),
        counts,
    )
}

/// The rows of `firings` — one per part of each firing's patch, in sending order (see
/// `profile::Patch::parts`), and for a temporary `away` the `auto` due at its end — with
/// each firing's number of rows.
pub(super) fn firing_values<'a>(
    firings: &[(&'a NewUpdate, CalendarColumns<'a>)],
) -> (Vec<RowValues<'a>>, Vec<usize>) {
    let mut rows = Vec::with_capacity(firings.len());
    let mut counts = Vec::with_capacity(firings.len());
    for (u, cal) in firings {
        let mut parts: Vec<(i64, Patch)> = u
            .patch
            .parts()
            .into_iter()
            .map(|p| (ms(u.fire_at), p))
            .collect();
        // A temporary `away` is set back to `auto` at its end (SPEC §6): a row of the firing
        // due then, so that it is as durable and ordered as the rest.
        if let Some(end) = u.restore.then(|| back_to_auto_at(&u.patch)).flatten() {
            let auto = Patch {
                presence: Some(crate::profile::Presence::Auto),
                ..Patch::default()
            };
            parts.push((end.saturating_mul(1000), auto));
        }
        counts.push(parts.len());
        for (k, (fire_at, part)) in parts.iter().enumerate() {
            // Only the profile part can be temporary: restore puts a status back.
            let restore = k == 0 && u.restore && part.status.is_some();
            rows.push((
                u.rule.as_deref(),
                u.target.token.as_str(),
                u.target.user_col(),
                *fire_at,
                serde_json::to_string(part).expect("patch serializes"),
                u.respect_manual as i64,
                restore as i64,
                cal.map(|c| c.0),
                cal.map(|c| c.1),
                cal.map(|c| c.2),
            ));
        }
    }
    (rows, counts)
}

/// Insert each firing as its rows (see [`firing_rows`]) in one statement, linking the later
/// parts to the first (`parent`). Returns each firing's first row id, in order.
async fn insert_firings(
    conn: &mut SqliteConnection,
    firings: &[(&NewUpdate, CalendarColumns<'_>)],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, QueueError> {
    if firings.is_empty() {
        return Ok(Vec::new());
    }
    let (rows, counts) = firing_rows(firings);
    insert_rows(conn, rows, &counts, now).await
}

/// Insert `rows` (see [`firing_rows`]; `counts` rows per firing) in one statement, linking
/// each firing's later parts to its first (`parent`). Returns each firing's first row id.
async fn insert_rows(
    conn: &mut SqliteConnection,
    rows: String,
    counts: &[usize],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, QueueError> {
    // Rows go in in array order (ORDER BY key) and AUTOINCREMENT ids only grow, so the ids,
    // sorted, are the rows' in order; RETURNING itself promises no order.
    let mut ids: Vec<i64> = sqlx::query_scalar(INSERT_ROWS)
        .bind(rows)
        .bind(ms(now))
        .fetch_all(&mut *conn)
        .await?;
    ids.sort_unstable();
    let mut firsts = Vec::with_capacity(counts.len());
    let mut links: Vec<(i64, i64)> = Vec::new();
    let mut next = ids.into_iter();
    for &n in counts {
        let first = next.next().expect("one id per row");
        firsts.push(first);
        links.extend(next.by_ref().take(n - 1).map(|id| (id, first)));
    }
    if !links.is_empty() {
        sqlx::query(
            "UPDATE updates SET parent = l.value ->> 1
             FROM json_each(?1) AS l WHERE updates.id = l.value ->> 0",
        )
        .bind(serde_json::to_string(&links).expect("links serialize"))
        .execute(&mut *conn)
        .await?;
    }
    Ok(firsts)
}

/// The reason recorded on rows skipped under `respect_manual`.
pub const SKIPPED_MANUAL: &str = "manual_status: the user set a status by hand";

/// Notices commits made by other connections — another process such as `slack-statusd set`.
#[derive(Debug)]
pub struct ChangeWatcher {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    last: i64,
}

impl ChangeWatcher {
    /// Whether any other connection committed since the last call.
    pub async fn changed(&mut self) -> Result<bool, QueueError> {
        let v: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut *self.conn)
            .await?;
        let changed = v != self.last;
        self.last = v;
        Ok(changed)
    }
}

/// Give the database's side files (`-wal`, `-shm`) the owner of the database file itself.
///
/// Run from a shell as root, `set` and `queue` can make SQLite create these files owned by
/// root; a service running as a dynamic or dedicated user could then no longer open its own
/// database. Only root can change an owner; for anyone else this is a no-op.
pub fn match_owner(db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(db)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        match std::fs::metadata(&side) {
            Ok(m) if m.uid() != owner.uid() || m.gid() != owner.gid() => {
                std::os::unix::fs::chown(&side, Some(owner.uid()), Some(owner.gid())).map_err(
                    |e| {
                        std::io::Error::new(
                            e.kind(),
                            format!(
                                "cannot give {} to the database's owner: {e}",
                                side.display()
                            ),
                        )
                    },
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}
