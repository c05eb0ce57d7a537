//! Claims and finishes of many workers, gathered into shared statements (group commit).
//!
//! When a thousand rules fire at one instant on a thousand tokens, every token's worker claims
//! its rows at once, and a moment later records how its request ended. A transaction each
//! would queue two thousand commits, and ten round trips to SQLite's thread apiece, behind the
//! database's single write lock: the last token's request would start a second late.
//!
//! So each call leaves its operation in a shared list and waits for its turn at the writer
//! connection. Whoever gets the turn runs everything in the list: all the finishes as one
//! transaction sent in one round trip, then all the claims as one `UPDATE … RETURNING`, and
//! hands every caller its own result. Alone, a call costs one round trip; under load, one
//! commit serves everyone who was waiting. If a shared run fails, each of its operations runs
//! again on its own, so that one bad row fails only its own caller.

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};
use sqlx::{Connection as _, Row as _, SqliteConnection};
use tokio::sync::oneshot;
use tokio::sync::OwnedMutexGuard;

use super::{
    hold_token, merge, ms, row_to_update, Batch, Claim, Finish, MergeInput, MergePlan, QueueError,
    Target, Update, Writer, ROW_COLUMNS, SKIPPED_MANUAL,
};

/// A claim of every pending row of `target`, as [`super::Queue::claim`] describes it.
struct ClaimOp {
    target: Target,
    now: DateTime<Utc>,
}

/// The outcome of one request, as [`super::Queue::finish`] describes it.
struct FinishOp {
    target: Target,
    /// The claimed rows: id and attempts spent before this request.
    rows: Vec<(i64, u32)>,
    plan: MergePlan,
    outcome: Finish,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
}

type Reply<T> = oneshot::Sender<Result<T, QueueError>>;

/// Operations waiting for the next turn at the writer, with where each answer goes.
#[derive(Default)]
struct Waiting {
    claims: Vec<(ClaimOp, Reply<Claim>)>,
    finishes: Vec<(FinishOp, Reply<()>)>,
}

/// Gathers the claims and finishes of concurrent callers into shared transactions. The turn
/// is the writer connection's lock: while one gathered set runs, the next set gathers.
#[derive(Default)]
pub(super) struct Combiner {
    waiting: Mutex<Waiting>,
}

impl fmt::Debug for Combiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Combiner").finish_non_exhaustive()
    }
}

impl Combiner {
    /// Claim every pending row of `target` if its first row is due at `now`.
    pub(super) async fn claim(
        &self,
        writer: &Writer,
        target: &Target,
        now: DateTime<Utc>,
    ) -> Result<Claim, QueueError> {
        let (reply, answer) = oneshot::channel();
        let op = ClaimOp {
            target: target.clone(),
            now,
        };
        self.lock_waiting().claims.push((op, reply));
        self.wait(writer, answer).await
    }

    /// Record how the request for `batch` ended.
    pub(super) async fn finish(
        &self,
        writer: &Writer,
        batch: &Batch,
        outcome: &Finish,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        let (reply, answer) = oneshot::channel();
        let Some(first) = batch.rows.first() else {
            return Ok(());
        };
        let op = FinishOp {
            target: first.target.clone(),
            rows: batch.rows.iter().map(|r| (r.id, r.attempts)).collect(),
            plan: batch.plan.clone(),
            outcome: outcome.clone(),
            started_at,
            now,
        };
        self.lock_waiting().finishes.push((op, reply));
        self.wait(writer, answer).await
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Nothing panics while holding it; if something did, the list is still whole.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until either someone else's turn has answered our operation, or it is our turn:
    /// then run whatever has gathered, ours included.
    async fn wait<T>(
        &self,
        writer: &Writer,
        mut answer: oneshot::Receiver<Result<T, QueueError>>,
    ) -> Result<T, QueueError> {
        // Not only the turn: a thousand callers whose operations one turn already answered
        // would otherwise still pass the lock from one to the next before they could go on.
        let turn = tokio::select! {
            biased;
            done = &mut answer => return done.unwrap_or(Err(QueueError::Interrupted)),
            turn = writer.clone().lock_owned() => turn,
        };
        let waiting = std::mem::take(&mut *self.lock_waiting());
        if !waiting.claims.is_empty() || !waiting.finishes.is_empty() {
            // A task of its own: a caller that goes away must not leave the others'
            // operations half done.
            let _ = tokio::spawn(run(turn, waiting)).await;
        } else {
            drop(turn);
        }
        answer.await.unwrap_or(Err(QueueError::Interrupted))
    }
}

/// Run the gathered operations and answer each caller: the finishes together, then the
/// claims together. If a shared run fails, each of its operations runs again on its own.
async fn run(mut turn: OwnedMutexGuard<Option<SqliteConnection>>, waiting: Waiting) {
    // Closed: dropping the replies answers every caller with `Interrupted`.
    let Some(writer) = turn.as_mut() else {
        return;
    };
    let Waiting { claims, finishes } = waiting;
    let (ops, replies): (Vec<_>, Vec<_>) = finishes.into_iter().unzip();
    if !ops.is_empty() {
        match finish_all(writer, &ops).await {
            Ok(()) => replies.into_iter().for_each(|r| drop(r.send(Ok(())))),
            Err(e) if ops.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(_) => {
                for (op, reply) in ops.iter().zip(replies) {
                    let _ = reply.send(finish_all(writer, std::slice::from_ref(op)).await);
                }
            }
        }
    }
    let (ops, replies): (Vec<_>, Vec<_>) = claims.into_iter().unzip();
    if !ops.is_empty() {
        match claim_all(writer, &ops).await {
            Ok(claimed) => {
                for (reply, claim) in replies.into_iter().zip(claimed) {
                    let _ = reply.send(Ok(claim));
                }
            }
            Err(e) if ops.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(_) => {
                for (op, reply) in ops.iter().zip(replies) {
                    let claimed = claim_all(writer, std::slice::from_ref(op)).await;
                    let _ = reply.send(claimed.map(|mut c| c.pop().unwrap_or(Claim::NotReady)));
                }
            }
        }
    }
}

/// The new values of one row: id, state, attempts to add, last error (`None`: keep),
/// not-before (`None`: keep), updated-at, finished-at.
type RowChange<'a> = (
    i64,
    &'a str,
    u32,
    Option<&'a str>,
    Option<i64>,
    i64,
    Option<i64>,
);

/// Every row's fate under `plan`, finished at `t`.
fn plan_changes<'a>(plan: &'a MergePlan, t: i64, out: &mut Vec<RowChange<'a>>) {
    let fates = [
        (&plan.contributors, "sent", None),
        (&plan.superseded, "superseded", None),
        (&plan.expired, "expired", None),
        (&plan.skipped, "skipped", Some(SKIPPED_MANUAL)),
    ];
    for (ids, state, error) in fates {
        out.extend(
            ids.iter()
                .map(|&id| (id, state, 0, error, None, t, Some(t))),
        );
    }
}

/// Give each row in the JSON array `?1` of [`RowChange`]s its new values.
const CHANGE_ROWS: &str = "UPDATE updates SET state = c.value ->> 1,
        attempts = attempts + (c.value ->> 2), last_error = coalesce(c.value ->> 3, last_error),
        not_before = coalesce(c.value ->> 4, not_before), updated_at = c.value ->> 5,
        finished_at = c.value ->> 6
    FROM json_each(?1) AS c WHERE updates.id = c.value ->> 0";

/// Log the request starts in the JSON array `?2` of (token, user, started-at).
const LOG_STARTS: &str = "INSERT INTO sends (token, user, started_at)
    SELECT s.value ->> 0, s.value ->> 1, s.value ->> 2 FROM json_each(?2) AS s";

/// [`LOG_STARTS`] and [`CHANGE_ROWS`] as one transaction in one round trip to SQLite's thread.
static FINISH: LazyLock<String> =
    LazyLock::new(|| format!("BEGIN IMMEDIATE; {LOG_STARTS}; {CHANGE_ROWS}; COMMIT"));

/// [`LOG_STARTS`] and [`CHANGE_ROWS`] inside a transaction the caller holds.
static FINISH_IN_TX: LazyLock<String> = LazyLock::new(|| format!("{LOG_STARTS}; {CHANGE_ROWS}"));

/// Claim, for each (token, user, now) in the JSON array `?1` whose first pending row (in
/// firing order) is due at its `now`, every pending row of that target; stamp them with `?2`.
/// CROSS JOIN keeps SQLite from scanning every pending row once per claim: the claims lead,
/// the index follows.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE updates SET state = 'in_flight', updated_at = ?2
         WHERE id IN (
             SELECT u.id FROM json_each(?1) AS c CROSS JOIN updates AS u
             WHERE u.token = c.value ->> 0 AND u.user = c.value ->> 1 AND u.state = 'pending'
               AND (SELECT f.not_before FROM updates AS f
                    WHERE f.token = c.value ->> 0 AND f.user = c.value ->> 1
                      AND f.state = 'pending'
                    ORDER BY f.fire_at, f.id LIMIT 1) <= c.value ->> 2)
         RETURNING {ROW_COLUMNS}"
    )
});

/// Write `changes` with one statement.
async fn change_rows(
    conn: &mut SqliteConnection,
    changes: &[RowChange<'_>],
) -> Result<(), QueueError> {
    sqlx::query(CHANGE_ROWS)
        .bind(serde_json::to_string(changes).expect("row changes serialize"))
        .execute(conn)
        .await?;
    Ok(())
}

/// Record the outcomes, atomically and in one round trip: each request's real start (the
/// throttle rebuilds its windows from these after a restart) and the rows' new states.
async fn finish_all(
    writer: &mut SqliteConnection,
    finishes: &[FinishOp],
) -> Result<(), QueueError> {
    let mut changes: Vec<RowChange<'_>> = Vec::new();
    let mut starts: Vec<(&str, &str, i64)> = Vec::new();
    for f in finishes {
        let t = ms(f.now);
        if f.outcome != Finish::NotSent {
            starts.push((&f.target.token, f.target.user_col(), ms(f.started_at)));
        }
        match &f.outcome {
            Finish::Sent | Finish::NotSent => plan_changes(&f.plan, t, &mut changes),
            Finish::Requeue => changes.extend(
                f.rows
                    .iter()
                    .map(|&(id, _)| (id, "pending", 0, None, None, t, None)),
            ),
            Finish::Retry {
                error,
                retry_at,
                max_attempts,
            } => changes.extend(f.rows.iter().map(|&(id, attempts)| {
                let out = attempts + 1 >= *max_attempts;
                let state = if out { "failed" } else { "pending" };
                let finished = out.then_some(t);
                (
                    id,
                    state,
                    1,
                    Some(error.as_str()),
                    Some(ms(*retry_at)),
                    t,
                    finished,
                )
            })),
            Finish::Fail { error } | Finish::FailAndHoldToken { error } => changes.extend(
                f.rows
                    .iter()
                    .map(|&(id, _)| (id, "failed", 1, Some(error.as_str()), None, t, Some(t))),
            ),
        }
    }
    let changes = serde_json::to_string(&changes).expect("row changes serialize");
    let starts = serde_json::to_string(&starts).expect("starts serialize");
    let holds: Vec<_> = finishes
        .iter()
        .filter_map(|f| match &f.outcome {
            Finish::FailAndHoldToken { error } => Some((f, error)),
            _ => None,
        })
        .collect();
    if holds.is_empty() {
        let done = sqlx::query(&FINISH)
            .bind(changes)
            .bind(starts)
            .execute(&mut *writer)
            .await;
        if let Err(e) = done {
            // The transaction began inside the query: end it here, or the next write would
            // find the connection still inside it.
            if writer.is_in_transaction() {
                let _ = sqlx::query("ROLLBACK").execute(&mut *writer).await;
            }
            return Err(e.into());
        }
        return Ok(());
    }
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(&FINISH_IN_TX)
        .bind(changes)
        .bind(starts)
        .execute(&mut *tx)
        .await?;
    for (f, error) in holds {
        hold_token(&mut tx, &f.target.token, error, f.now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Claim, for each target whose first pending row (in firing order) is due, every pending
/// row, in one statement; merge each target's rows; finish at once the targets that have
/// nothing left to send.
async fn claim_all(
    writer: &mut SqliteConnection,
    claims: &[ClaimOp],
) -> Result<Vec<Claim>, QueueError> {
    let wanted: Vec<(&str, &str, i64)> = claims
        .iter()
        .map(|c| (c.target.token.as_str(), c.target.user_col(), ms(c.now)))
        .collect();
    // The rows are stamped with the latest `now` of the batch: the throttle counts a request
    // lost in a crash from this stamp, and later is the safe side. No transaction: one
    // statement is atomic, and whatever follows it (finishing rows with nothing to send,
    // failing unreadable ones) is safe to lose in a crash — recovery puts in-flight rows back
    // to pending.
    let latest = claims.iter().map(|c| ms(c.now)).max().unwrap_or_default();
    let raw = sqlx::query(&CLAIM)
        .bind(serde_json::to_string(&wanted).expect("targets serialize"))
        .bind(latest)
        .fetch_all(&mut *writer)
        .await?;
    let mut by_target: HashMap<Target, Vec<Update>> = HashMap::new();
    let mut unreadable = Vec::new();
    for r in &raw {
        match row_to_update(r) {
            Ok(row) => by_target.entry(row.target.clone()).or_default().push(row),
            // A row edited by hand into nonsense fails alone; its target's other rows go on.
            Err(QueueError::BadPatch { id, source }) => unreadable.push((
                id,
                format!("the stored patch is not valid JSON ({source}); drop this row or fix the patch and retry it"),
            )),
            Err(e) => {
                // Cannot happen short of a changed schema; still, leave no row stranded.
                let ids = raw.iter().filter_map(|r| r.try_get::<i64, _>("id").ok());
                let back: Vec<RowChange<'_>> =
                    ids.map(|id| (id, "pending", 0, None, None, latest, None)).collect();
                change_rows(writer, &back).await?;
                return Err(e);
            }
        }
    }
    let mut claimed = Vec::with_capacity(claims.len());
    for c in claims {
        let Some(mut rows) = by_target.remove(&c.target) else {
            claimed.push(Claim::NotReady);
            continue;
        };
        // RETURNING comes in no particular order; the merge needs firing order.
        rows.sort_by_key(|r| (r.fire_at, r.id));
        let inputs: Vec<MergeInput> = rows
            .iter()
            .map(|r| MergeInput {
                id: r.id,
                patch: r.patch.clone(),
            })
            .collect();
        let plan = merge(&inputs, c.now.timestamp());
        claimed.push(if plan.patch.is_empty() {
            Claim::NothingToSend(plan)
        } else {
            Claim::Send(Batch { rows, plan })
        });
    }
    let mut changes: Vec<RowChange<'_>> = unreadable
        .iter()
        .map(|(id, error)| {
            (
                *id,
                "failed",
                1,
                Some(error.as_str()),
                None,
                latest,
                Some(latest),
            )
        })
        .collect();
    for (c, claim) in claims.iter().zip(&claimed) {
        if let Claim::NothingToSend(plan) = claim {
            plan_changes(plan, ms(c.now), &mut changes);
        }
    }
    if !changes.is_empty() {
        change_rows(writer, &changes).await?;
    }
    Ok(claimed)
}
