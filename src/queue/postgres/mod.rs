//! The queue on PostgreSQL (SPEC §8): the statements of the worker's path — enqueue, claim,
//! finish, the shared send log — and of the leases that let several instances share one
//! database. The design is in ARCHITECTURE.md, "Several instances on PostgreSQL"; the
//! decisions (merge, the rows' fates, the starts to log) are the ones the SQLite backend
//! takes, shared through `batch.rs`, and only the SQL here differs.
//!
//! The statements of the other methods are in this module's children, one per concern as
//! on SQLite: `admin.rs` (the CLI's reads and edits, retention, holds), `calendar.rs`,
//! `restore.rs`, `ahead.rs` (the scheduler's rewinds).
//!
//! Every statement that claims or finishes a token's rows names the lease it holds (a
//! [`Fence`]) and checks it, under a share lock on the lease row, in the same transaction: a
//! holder whose lease was taken over (a higher epoch) claims nothing and records nothing —
//! its rows were rescued by the new holder, which logged their requests as sent at their
//! claim time.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Row as _;

mod admin;
mod ahead;
mod calendar;
mod restore;

use super::batch::{self, ClaimOp, FinishOp};
use super::{
    firing_values, from_ms, ms, recovered_starts, send_row, Advance, Batch, Claim, Finish, Health,
    LeaveRestore, NewUpdate, QueueError, ReadyTarget, Target, FIRING_ORDER,
};
use crate::config::{read_token, Postgres};
use crate::profile::Patch;

/// The columns of a row as the shared decoding reads them (see `ReadRow`): JSONB as text,
/// booleans and INTEGER as 64-bit integers, `target_user` as `user`.
const PG_ROW_COLUMNS: &str = "id, rule, calendar, token, target_user AS user, fire_at, \
     patch::text AS patch, respect_manual::int::int8 AS respect_manual, state, \
     attempts::int8 AS attempts, last_error, not_before, created_at, updated_at, \
     restore::int::int8 AS restore, saved::text AS saved, parent";

/// The first row of a rule's firing is unique per rule and instant (`updates_firing_once`),
/// unless a rewind superseded it: the inference clause of every insert that relies on it.
const FIRING_ONCE: &str = "(rule, fire_at) WHERE rule IS NOT NULL AND parent IS NULL \
     AND saved IS NULL \
     AND NOT (state = 'superseded' AND coalesce(last_error, '') IN ('config_changed', 'missed'))";

/// The lease a claim or finish is made under: the lease row's name, this instance and the
/// epoch the database granted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// `token:NAME` (or `calendar:NAME`).
    pub name: String,
    /// The holding instance's id.
    pub holder: String,
    /// The epoch of this holding.
    pub epoch: i64,
}

/// A lease just taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// What every claim and finish under it names.
    pub fence: Fence,
    /// Rows a previous holder left `in_flight`, put back to `pending` with their requests
    /// logged as started at their claim.
    pub rescued: u64,
}

/// The name of the lease on `token`.
pub fn token_lease(token: &str) -> String {
    format!("token:{token}")
}

/// Handle to a queue on PostgreSQL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgQueue {
    pool: PgPool,
    /// The URL by scheme and host: all that any message shows of it.
    shown: String,
    /// Fires once the daemon should stop using the database (never for a file's fate: a
    /// server has none; the daemon's own checks may declare it).
    health: Arc<Health>,
    /// The leases this instance holds on tokens, by token: every claim and finish of a
    /// token's rows is fenced by its entry, and a token without one is claimed nothing.
    held: Arc<Mutex<HashMap<String, Fence>>>,
}

impl PgQueue {
    /// Connect to the database of `config` and apply the migrations. The password comes from
    /// `database_password_file`, else `PGPASSWORD` or `~/.pgpass` (read by sqlx); `sslmode`
    /// and the rest from the URL. A database migrated by a newer slack-statusd is refused.
    pub async fn open(config: &Postgres) -> Result<PgQueue, QueueError> {
        let shown = config.url.display().to_string();
        let open_error = |source: sqlx::Error| QueueError::Open {
            path: shown.clone().into(),
            source,
        };
        let mut options =
            PgConnectOptions::from_str(config.url.expose_url()).map_err(&open_error)?;
        if let Some(file) = &config.password_file {
            let password = read_token(file).map_err(|e| QueueError::PasswordFile {
                path: file.clone(),
                reason: e.to_string(),
            })?;
            options = options.password(&password);
        }
        options = options.application_name("slack-statusd");
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(&open_error)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| super::migrate_error(e, shown.clone().into()))?;
        Ok(PgQueue {
            pool,
            health: Arc::new(Health::new(Path::new(&shown))),
            shown,
            held: Arc::default(),
        })
    }

    /// What the daemon watches to stop once the database cannot be used.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Take the lease on `token` (see [`PgQueue::take_lease`]) and keep its fence for the
    /// claims and finishes of its rows. `Some(rescued)` once held.
    pub async fn take_token(
        &self,
        token: &str,
        holder: &str,
        length: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, QueueError> {
        let grant = self
            .take_lease(&token_lease(token), Some(token), holder, length, now)
            .await?;
        Ok(grant.map(|g| {
            self.held_leases().insert(token.to_string(), g.fence);
            g.rescued
        }))
    }

    /// Renew the lease on `token`; once it is lost, its fence is dropped (`false`).
    pub async fn renew_token(&self, token: &str, length: Duration) -> Result<bool, QueueError> {
        let fence = self.fence(token)?;
        let kept = self.renew_lease(&fence, length).await?;
        if !kept {
            self.held_leases().remove(token);
        }
        Ok(kept)
    }

    /// Give the lease on `token` up, if this instance holds it.
    pub async fn release_token(&self, token: &str) -> Result<(), QueueError> {
        let fence = self.held_leases().remove(token);
        match fence {
            Some(fence) => self.release_lease(&fence).await,
            None => Ok(()),
        }
    }

    fn held_leases(&self) -> std::sync::MutexGuard<'_, HashMap<String, Fence>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fence of this instance's lease on `token`, or `LeaseLost`.
    fn fence(&self, token: &str) -> Result<Fence, QueueError> {
        self.held_leases()
            .get(token)
            .cloned()
            .ok_or_else(|| QueueError::LeaseLost(token_lease(token)))
    }

    /// Nothing to do on PostgreSQL: rows left in flight by an instance that stopped are
    /// rescued by the next holder of their token's lease ([`PgQueue::take_lease`]), which is
    /// the only one that can tell they are not another live instance's.
    pub async fn recover_in_flight(&self, _now: DateTime<Utc>) -> Result<u64, QueueError> {
        Ok(0)
    }

    /// As [`PgQueue::recover_in_flight`]: a worker that stops gives its lease up, and the
    /// next holder rescues the token's rows.
    pub async fn recover_token_in_flight(
        &self,
        _token: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        Ok(0)
    }

    /// Claim `target`'s due rows under this instance's lease on its token.
    pub async fn claim(&self, target: &Target, now: DateTime<Utc>) -> Result<Claim, QueueError> {
        let fence = self.fence(&target.token)?;
        self.claim_under(target, now, &fence).await
    }

    /// Record a request's outcome under this instance's lease on its token.
    pub async fn finish(
        &self,
        batch: &Batch,
        outcome: &Finish,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        let fence = self.fence(&batch.target.token)?;
        self.finish_under(batch, outcome, started_at, now, &fence)
            .await
    }

    /// The database as messages show it: scheme and host.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Close every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Take the lease `name` for `holder` for `length`, if it is free or expired by the
    /// database's clock; a new holding gets a higher epoch. In the same transaction, rows of
    /// the token that a previous holder left `in_flight` are rescued as a restart recovers
    /// them (logged as sent at their claim, then `pending`), so that this holder's windows,
    /// rebuilt from the log afterwards, count them. `None`: another instance holds it.
    pub async fn take_lease(
        &self,
        name: &str,
        token: Option<&str>,
        holder: &str,
        length: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Grant>, QueueError> {
        let mut tx = self.pool.begin().await?;
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, epoch, expires_at)
             VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
             ON CONFLICT (name) DO UPDATE
                 SET holder = excluded.holder, epoch = leases.epoch + 1,
                     expires_at = excluded.expires_at
                 WHERE leases.expires_at < now()
             RETURNING epoch",
        )
        .bind(name)
        .bind(holder)
        .bind(length.as_millis() as i64)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(epoch) = epoch else {
            return Ok(None);
        };
        let rescued = match token {
            Some(token) => rescue(&mut tx, token, now).await?,
            None => 0,
        };
        tx.commit().await?;
        Ok(Some(Grant {
            fence: Fence {
                name: name.to_string(),
                holder: holder.to_string(),
                epoch,
            },
            rescued,
        }))
    }

    /// Extend the lease of `fence` to `length` from now (the database's clock). `false`: it
    /// is no longer this holding's (taken over after it expired).
    pub async fn renew_lease(&self, fence: &Fence, length: Duration) -> Result<bool, QueueError> {
        let done = sqlx::query(
            "UPDATE leases SET expires_at = now() + $4 * interval '1 millisecond'
             WHERE name = $1 AND holder = $2 AND epoch = $3",
        )
        .bind(&fence.name)
        .bind(&fence.holder)
        .bind(fence.epoch)
        .bind(length.as_millis() as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Give the lease up (a clean stop): another instance may take it at once. The row stays,
    /// so that epochs only grow.
    pub async fn release_lease(&self, fence: &Fence) -> Result<(), QueueError> {
        sqlx::query(
            "UPDATE leases SET expires_at = '-infinity'
             WHERE name = $1 AND holder = $2 AND epoch = $3",
        )
        .bind(&fence.name)
        .bind(&fence.holder)
        .bind(fence.epoch)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Enqueue one update outside any rule (`slack-statusd set`), with its parts. Returns its
    /// first row's id once committed.
    pub async fn enqueue(&self, update: &NewUpdate, now: DateTime<Utc>) -> Result<i64, QueueError> {
        let mut tx = self.pool.begin().await?;
        let ids = insert_firings(&mut tx, &[update], now).await?;
        tx.commit().await?;
        ids.into_iter()
            .next()
            .flatten()
            .ok_or(QueueError::Sql(sqlx::Error::RowNotFound))
    }

    /// Move each rule's mark forward to its `until` (never backward), enqueueing its firing,
    /// in one transaction, as `Queue::advance_rules` does. A firing at or before the stored
    /// mark is not enqueued again, and one that another instance enqueued already is not
    /// enqueued twice (the unique key): `None` for it.
    pub async fn advance_rules(
        &self,
        advances: &[Advance],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<i64>>, QueueError> {
        if advances.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = advances.iter().map(|a| a.rule.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        let stored: HashMap<String, i64> = sqlx::query(
            "SELECT rule, scheduled_until FROM rule_marks
             WHERE rule IN (SELECT jsonb_array_elements_text($1::jsonb))",
        )
        .bind(serde_json::to_string(&names).expect("names serialize"))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("rule")?, r.try_get("scheduled_until")?)))
        .collect::<Result<_, QueueError>>()?;
        let fresh: Vec<Option<&NewUpdate>> = advances
            .iter()
            .map(|a| {
                a.firing
                    .as_ref()
                    .filter(|f| stored.get(&a.rule).is_none_or(|&mark| ms(f.fire_at) > mark))
            })
            .collect();
        let firings: Vec<&NewUpdate> = fresh.iter().flatten().copied().collect();
        let mut ids = insert_firings(&mut tx, &firings, now).await?.into_iter();
        let marks: Vec<(&str, i64, Option<i64>)> = advances
            .iter()
            .map(|a| (a.rule.as_str(), ms(a.until), a.fingerprint))
            .collect();
        sqlx::query(
            "INSERT INTO rule_marks (rule, scheduled_until, fingerprint)
             SELECT m.v ->> 0, (m.v ->> 1)::bigint, (m.v ->> 2)::bigint
             FROM jsonb_array_elements($1::jsonb) AS m(v)
             ON CONFLICT (rule) DO UPDATE
                 SET scheduled_until = greatest(rule_marks.scheduled_until,
                                                excluded.scheduled_until),
                     fingerprint = coalesce(excluded.fingerprint, rule_marks.fingerprint)",
        )
        .bind(serde_json::to_string(&marks).expect("marks serialize"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(fresh
            .iter()
            .map(|f| f.and_then(|_| ids.next().flatten()))
            .collect())
    }

    /// Targets of `token` with pending rows, each with the instant its first row (in firing
    /// order) may go, earliest first.
    pub async fn ready_targets(&self, token: &str) -> Result<Vec<ReadyTarget>, QueueError> {
        let sql = format!(
            "SELECT target_user, not_before FROM (
                 SELECT target_user, not_before,
                        row_number() OVER (PARTITION BY target_user ORDER BY {FIRING_ORDER}) AS n
                 FROM updates WHERE token = $1 AND state = 'pending') AS firsts
             WHERE n = 1 ORDER BY not_before, target_user"
        );
        let rows = sqlx::query(&sql).bind(token).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let user: String = r.try_get("target_user")?;
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

    /// Claim every due pending row of `target` for one request, as `Queue::claim` does, under
    /// `fence`: a holder whose lease was taken over, or has expired by the database's clock,
    /// claims nothing (`Err(LeaseLost)`). Rows another instance has locked are skipped.
    pub async fn claim_under(
        &self,
        target: &Target,
        now: DateTime<Utc>,
        fence: &Fence,
    ) -> Result<Claim, QueueError> {
        let sql = format!(
            "UPDATE updates SET state = 'in_flight', updated_at = $3
             WHERE id IN (
                 SELECT u.id FROM updates AS u
                 WHERE u.token = $1 AND u.target_user = $2 AND u.state = 'pending'
                   AND u.not_before <= $3
                   AND (SELECT f.not_before FROM updates AS f
                        WHERE f.token = $1 AND f.target_user = $2 AND f.state = 'pending'
                        ORDER BY {FIRING_ORDER} LIMIT 1) <= $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING {PG_ROW_COLUMNS}"
        );
        let mut tx = self.pool.begin().await?;
        if !holds(&mut tx, fence, true).await? {
            return Err(QueueError::LeaseLost(fence.name.clone()));
        }
        let raw = sqlx::query(&sql)
            .bind(&target.token)
            .bind(target.user_col())
            .bind(ms(now))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let op = ClaimOp {
            target: target.clone(),
            now,
        };
        Ok(batch::claims_from_rows(&[op], &raw)?
            .pop()
            .unwrap_or(Claim::NotReady))
    }

    /// Record how the request for `batch` ended, as `Queue::finish` does, under `fence`: a
    /// holder whose lease was taken over records nothing (`Err(LeaseLost)`) — the new holder
    /// rescued the rows and logged the request.
    pub async fn finish_under(
        &self,
        batch: &Batch,
        outcome: &Finish,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        fence: &Fence,
    ) -> Result<(), QueueError> {
        if batch.rows.is_empty() && batch.unreadable.is_empty() && batch.released.is_empty() {
            return Ok(());
        }
        let op = FinishOp::new(batch, outcome.clone(), started_at, now);
        let ops = [op];
        let writes = batch::finish_writes(&ops);
        let mut tx = self.pool.begin().await?;
        if !holds(&mut tx, fence, false).await? {
            return Err(QueueError::LeaseLost(fence.name.clone()));
        }
        log_starts(&mut tx, &writes.starts).await?;
        sqlx::query(
            "UPDATE updates SET state = c.v ->> 1,
                 attempts = attempts + (c.v ->> 2)::int,
                 last_error = coalesce(c.v ->> 3, last_error),
                 not_before = coalesce((c.v ->> 4)::bigint, not_before),
                 updated_at = (c.v ->> 5)::bigint, finished_at = (c.v ->> 6)::bigint
             FROM jsonb_array_elements($1::jsonb) AS c(v)
             WHERE updates.id = (c.v ->> 0)::bigint",
        )
        .bind(serde_json::to_string(&writes.changes).expect("row changes serialize"))
        .execute(&mut *tx)
        .await?;
        for (f, error) in writes.holds {
            sqlx::query(
                "UPDATE updates SET state = 'held', last_error = $3, updated_at = $1
                 WHERE token = $2 AND state = 'pending'",
            )
            .bind(ms(f.now))
            .bind(&f.target.token)
            .bind(format!("token failed: {error}"))
            .execute(&mut *tx)
            .await?;
        }
        for (f, leave) in writes.restores {
            leave_restore(&mut tx, &f.target, leave, ms(f.started_at), ms(f.now)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Start times of requests by `token` at or after `since` — every instance's: the log is
    /// shared, so that a holder rebuilds its windows from what the others sent — each with
    /// its method and its user (`None`: the token's own profile), oldest first.
    pub async fn sends_since(
        &self,
        token: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, Option<String>, DateTime<Utc>)>, QueueError> {
        let rows = sqlx::query(
            "SELECT method, target_user AS user, started_at FROM sends
             WHERE token = $1 AND started_at >= $2 ORDER BY started_at, id",
        )
        .bind(token)
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(send_row).collect()
    }
}

/// The PostgreSQL schema's migrations, built into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Whether `fence` still holds its lease, taking a share lock on the lease row for the rest
/// of the transaction: a takeover waits for this transaction, and this one for a takeover
/// under way (then it sees the new epoch and fails). A claim also needs the lease unexpired
/// by the database's clock; a finish does not — the rows are still this holder's until
/// someone else takes the lease.
async fn holds(
    conn: &mut PgConnection,
    fence: &Fence,
    unexpired: bool,
) -> Result<bool, QueueError> {
    let found: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM leases
         WHERE name = $1 AND holder = $2 AND epoch = $3 AND (NOT $4 OR expires_at > now())
         FOR SHARE",
    )
    .bind(&fence.name)
    .bind(&fence.holder)
    .bind(fence.epoch)
    .bind(unexpired)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Log request starts (see `batch::Start`) in the shared send log.
async fn log_starts(
    conn: &mut PgConnection,
    starts: &[batch::Start<'_>],
) -> Result<(), QueueError> {
    if starts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO sends (token, target_user, started_at, method)
         SELECT s.v ->> 0, s.v ->> 1, (s.v ->> 2)::bigint, s.v ->> 3
         FROM jsonb_array_elements($1::jsonb) AS s(v)",
    )
    .bind(serde_json::to_string(starts).expect("starts serialize"))
    .execute(conn)
    .await?;
    Ok(())
}

/// Put the rows of `token` left `in_flight` back to `pending`, their requests logged as
/// started at their claim (see `recovered_starts`). Returns how many.
async fn rescue(
    conn: &mut PgConnection,
    token: &str,
    now: DateTime<Utc>,
) -> Result<u64, QueueError> {
    let claimed: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT DISTINCT token, target_user, updated_at, patch::text FROM updates
         WHERE state = 'in_flight' AND token = $1",
    )
    .bind(token)
    .fetch_all(&mut *conn)
    .await?;
    log_starts(&mut *conn, &recovered_starts(&claimed)).await?;
    let done = sqlx::query(
        "UPDATE updates SET state = 'pending', updated_at = $2
         WHERE state = 'in_flight' AND token = $1",
    )
    .bind(token)
    .bind(ms(now))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Insert each firing as its rows (see `firing_values`), the later parts linked to the first.
/// A rule's firing that another instance enqueued already is skipped (the unique key):
/// `None` for it. Returns each firing's first row id, in order.
async fn insert_firings(
    conn: &mut PgConnection,
    firings: &[&NewUpdate],
    now: DateTime<Utc>,
) -> Result<Vec<Option<i64>>, QueueError> {
    if firings.is_empty() {
        return Ok(Vec::new());
    }
    let with_columns: Vec<_> = firings.iter().map(|f| (*f, None)).collect();
    let (rows, counts) = firing_values(&with_columns);
    // The first row of each firing, then the parts of the firings that went in.
    let mut firsts = Vec::with_capacity(counts.len());
    let mut parts = Vec::with_capacity(counts.len());
    let mut rest = rows.into_iter();
    for &n in &counts {
        firsts.push(rest.next().expect("a firing has a first row"));
        parts.push(rest.by_ref().take(n - 1).collect::<Vec<_>>());
    }
    let sql = format!(
        "INSERT INTO updates (rule, token, target_user, fire_at, patch, respect_manual, restore,
                              calendar, change_key, uid, state, not_before, created_at,
                              updated_at, parent)
         SELECT f.v ->> 0, f.v ->> 1, f.v ->> 2, (f.v ->> 3)::bigint, (f.v ->> 4)::jsonb,
                (f.v ->> 5)::int <> 0, (f.v ->> 6)::int <> 0, f.v ->> 7, f.v ->> 8, f.v ->> 9,
                'pending', (f.v ->> 3)::bigint, $2, $2, $3
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS f(v, n) ORDER BY f.n
         ON CONFLICT {FIRING_ONCE} DO NOTHING
         RETURNING id"
    );
    let mut ids = Vec::with_capacity(firsts.len());
    // One statement per firing: RETURNING does not say which input row an id is for, and a
    // skipped firing returns none.
    for (first, parts) in firsts.iter().zip(&parts) {
        let id: Option<i64> = sqlx::query_scalar(&sql)
            .bind(serde_json::to_string(&[first]).expect("rows serialize"))
            .bind(ms(now))
            .bind(Option::<i64>::None)
            .fetch_optional(&mut *conn)
            .await?;
        if let (Some(id), false) = (id, parts.is_empty()) {
            sqlx::query(&sql)
                .bind(serde_json::to_string(parts).expect("rows serialize"))
                .bind(ms(now))
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Write the restore a sent temporary status leaves, inside the finish's transaction, as
/// the SQLite backend's `restore::leave_restore` does.
async fn leave_restore(
    conn: &mut PgConnection,
    target: &Target,
    leave: &LeaveRestore,
    sent_at: i64,
    now: i64,
) -> Result<(), QueueError> {
    let (saved, due) = leave.saved_row(sent_at);
    if let Some(id) = leave.existing {
        let moved = sqlx::query(
            "UPDATE updates SET saved = $2::jsonb, fire_at = $3, not_before = $3, updated_at = $4
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(id)
        .bind(&saved)
        .bind(due)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if moved.rows_affected() == 1 {
            return Ok(());
        }
    }
    let patch = serde_json::to_string(&Patch::default()).expect("a patch serializes");
    sqlx::query(
        "INSERT INTO updates (rule, token, target_user, fire_at, patch, respect_manual, state,
                              not_before, created_at, updated_at, saved)
         VALUES ($1, $2, $3, $4, $5::jsonb, FALSE, 'pending', $4, $6, $6, $7::jsonb)",
    )
    .bind(&leave.rule)
    .bind(&target.token)
    .bind(target.user_col())
    .bind(due)
    .bind(patch)
    .bind(now)
    .bind(saved)
    .execute(conn)
    .await?;
    Ok(())
}
