//! The statements of claims and finishes, written for many targets at once (group commit).
//!
//! When a thousand rules fire at one instant on a thousand tokens, every token's worker claims
//! its rows at once, and a moment later records how its request ended. A transaction each
//! would queue two thousand commits behind the database's single write lock: the last token's
//! request would start a second late. So the writer (`writer.rs`) hands every waiting claim
//! to [`claim_all`] and every waiting finish to [`finish_all`]: one set-based statement serves
//! them all, inside one transaction the writer opens and commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use crate::profile::Part;
use crate::throttle::Method;

use super::restore::leave_restore;
use super::{
    hold_token, merge, ms, row_target, row_to_update, Batch, Claim, Finish, LeaveRestore,
    MergeInput, MergePlan, QueueError, ReadRow, Target, Update, FIRING_ORDER, ROW_COLUMNS,
};

/// A claim of every pending row of `target`, as [`super::Queue::claim`] describes it.
pub(super) struct ClaimOp {
    /// Whose rows.
    pub(super) target: Target,
    /// Claim only if the first row is due at this instant.
    pub(super) now: DateTime<Utc>,
}

/// The outcome of one request, as [`super::Queue::finish`] describes it.
pub(super) struct FinishOp {
    /// Whose rows.
    pub(super) target: Target,
    /// The claimed rows: id and attempts spent before this request.
    pub(super) rows: Vec<(i64, u32)>,
    /// Each row's fate if the request succeeded.
    pub(super) plan: MergePlan,
    /// Claimed rows that cannot be read: they fail whatever the outcome.
    pub(super) unreadable: Vec<(i64, String)>,
    /// Claimed rows left for a later request: back to `pending` whatever the outcome.
    pub(super) released: Vec<i64>,
    /// The restore a sent temporary status leaves.
    pub(super) leave_restore: Option<LeaveRestore>,
    /// When the reads made for this request started.
    pub(super) reads: Vec<DateTime<Utc>>,
    /// The method the request called, logged with its start.
    pub(super) method: Method,
    /// How it ended.
    pub(super) outcome: Finish,
    /// When the request started (logged in `sends` unless nothing was sent).
    pub(super) started_at: DateTime<Utc>,
    /// When it ended.
    pub(super) now: DateTime<Utc>,
    /// Whether a request started (and so goes into `sends` for the throttle).
    pub(super) log_start: bool,
}

impl FinishOp {
    /// How the request for `batch` ended at `now`, started at `started_at`.
    pub(super) fn new(
        batch: &Batch,
        outcome: Finish,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> FinishOp {
        FinishOp {
            target: batch.target.clone(),
            rows: batch.rows.iter().map(|r| (r.id, r.attempts)).collect(),
            plan: batch.plan.clone(),
            unreadable: batch.unreadable.clone(),
            released: batch.released.clone(),
            leave_restore: batch.leave_restore.clone(),
            reads: batch.reads.clone(),
            method: batch.method(),
            log_start: !matches!(outcome, Finish::NotSent | Finish::PutBack),
            outcome,
            started_at,
            now,
        }
    }

    /// `batch`, claimed at `now`, is for a request that will never start: put its rows back.
    pub(super) fn requeue(batch: &Batch, now: DateTime<Utc>) -> FinishOp {
        FinishOp::new(batch, Finish::PutBack, now, now)
    }
}

/// The new values of one row: id, state, attempts to add, last error (`None`: keep),
/// not-before (`None`: keep), updated-at, finished-at.
pub(super) type RowChange<'a> = (
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
        (&plan.skipped, "skipped", Some(plan.skip_reason())),
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

/// Log the request starts in the JSON array `?2` of (token, user, started-at, method).
pub(super) const LOG_STARTS: &str = "INSERT INTO sends (token, user, started_at, method)
    SELECT s.value ->> 0, s.value ->> 1, s.value ->> 2, s.value ->> 3 FROM json_each(?2) AS s";

/// [`LOG_STARTS`] and [`CHANGE_ROWS`] as one transaction in one round trip to SQLite's thread.
static FINISH: LazyLock<String> =
    LazyLock::new(|| format!("BEGIN IMMEDIATE; {LOG_STARTS}; {CHANGE_ROWS}; COMMIT"));

/// [`LOG_STARTS`] and [`CHANGE_ROWS`], opening a transaction that holds go on in.
static BEGIN_FINISH: LazyLock<String> =
    LazyLock::new(|| format!("BEGIN IMMEDIATE; {LOG_STARTS}; {CHANGE_ROWS}"));

/// Claim, for each (token, user, now) in the JSON array `?1` whose first pending row (in
/// firing order) is due at its `now`, every pending row of that target due by then (a
/// calendar queues its changes ahead: a meeting tomorrow must not merge into a status sent
/// today); stamp them with `?2`.
/// CROSS JOIN keeps SQLite from scanning every pending row once per claim: the claims lead,
/// the index follows.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE updates SET state = 'in_flight', updated_at = ?2
         WHERE id IN (
             SELECT u.id FROM json_each(?1) AS c CROSS JOIN updates AS u
             WHERE u.token = c.value ->> 0 AND u.user = c.value ->> 1 AND u.state = 'pending'
               AND u.not_before <= c.value ->> 2
               AND (SELECT f.not_before FROM updates AS f
                    WHERE f.token = c.value ->> 0 AND f.user = c.value ->> 1
                      AND f.state = 'pending'
                    ORDER BY {FIRING_ORDER} LIMIT 1) <= c.value ->> 2)
         RETURNING {ROW_COLUMNS}"
    )
});

/// [`CLAIM`] as one transaction in one round trip to SQLite's thread.
static CLAIM_AND_COMMIT: LazyLock<String> =
    LazyLock::new(|| format!("BEGIN IMMEDIATE; {}; COMMIT", *CLAIM));

/// A request start to log: token, user column, started-at (Unix ms), method.
pub(super) type Start<'a> = (&'a str, &'a str, i64, &'a str);

/// What a set of finishes writes, whichever the backend: the rows' new values, the request
/// starts to log, the tokens to hold and the restores to leave (after the rows' changes: a
/// restore released by the batch is `pending` again).
pub(super) struct FinishWrites<'a> {
    /// Every row's new values.
    pub(super) changes: Vec<RowChange<'a>>,
    /// Each request's real start: the throttle rebuilds its windows from these.
    pub(super) starts: Vec<Start<'a>>,
    /// Finishes whose token is to be held, with the error.
    pub(super) holds: Vec<(&'a FinishOp, &'a str)>,
    /// Finishes that sent a temporary status, with the restore it leaves.
    pub(super) restores: Vec<(&'a FinishOp, &'a LeaveRestore)>,
}

/// What `finishes` write, in order.
pub(super) fn finish_writes(finishes: &[FinishOp]) -> FinishWrites<'_> {
    let mut changes: Vec<RowChange<'_>> = Vec::new();
    let mut starts: Vec<Start<'_>> = Vec::new();
    for f in finishes {
        let t = ms(f.now);
        changes.extend(
            f.released
                .iter()
                .map(|&id| (id, "pending", 0, None, None, t, None)),
        );
        starts.extend(f.reads.iter().map(|at| {
            (
                f.target.token.as_str(),
                f.target.user_col(),
                ms(*at),
                Method::ProfileGet.name(),
            )
        }));
        changes.extend(
            f.unreadable
                .iter()
                .map(|(id, error)| (*id, "failed", 1, Some(error.as_str()), None, t, Some(t))),
        );
        if f.log_start {
            starts.push((
                &f.target.token,
                f.target.user_col(),
                ms(f.started_at),
                f.method.name(),
            ));
        }
        match &f.outcome {
            Finish::Sent | Finish::NotSent => plan_changes(&f.plan, t, &mut changes),
            Finish::Requeue | Finish::PutBack => changes.extend(
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
    let holds = finishes
        .iter()
        .filter_map(|f| match &f.outcome {
            Finish::FailAndHoldToken { error } => Some((f, error.as_str())),
            _ => None,
        })
        .collect();
    let restores = finishes
        .iter()
        .filter(|f| f.outcome == Finish::Sent)
        .filter_map(|f| f.leave_restore.as_ref().map(|l| (f, l)))
        .collect();
    FinishWrites {
        changes,
        starts,
        holds,
        restores,
    }
}

/// Record the outcomes as one transaction, in one round trip: each request's real start (the
/// throttle rebuilds its windows from these after a restart) and the rows' new states. It
/// opens and commits the transaction itself (the writer rolls back on an error).
pub(super) async fn finish_all(
    writer: &mut SqliteConnection,
    finishes: &[FinishOp],
) -> Result<(), QueueError> {
    let writes = finish_writes(finishes);
    let changes = serde_json::to_string(&writes.changes).expect("row changes serialize");
    let starts = serde_json::to_string(&writes.starts).expect("starts serialize");
    // The transaction's BEGIN and COMMIT ride in the statements' own round trips.
    let more = !writes.holds.is_empty() || !writes.restores.is_empty();
    let first = if more { &*BEGIN_FINISH } else { &*FINISH };
    sqlx::query(first)
        .bind(changes)
        .bind(starts)
        .execute(&mut *writer)
        .await?;
    if more {
        for (f, error) in writes.holds {
            hold_token(writer, &f.target.token, error, f.now).await?;
        }
        for (f, leave) in writes.restores {
            leave_restore(writer, &f.target, leave, ms(f.started_at), ms(f.now)).await?;
        }
        sqlx::query("COMMIT").execute(&mut *writer).await?;
    }
    Ok(())
}

/// Claim, for each target whose first pending row (in firing order) is due, every pending
/// row, in one statement that is its own transaction (one round trip), and merge each
/// target's rows. Nothing else is written here: every claimed row stays `in_flight` until
/// its caller's [`finish_all`] — even the rows of a target left with nothing to send, and
/// rows that cannot be read — so that a claim never needs a second round trip, and a caller
/// that fails between the two leaves the rows as any interrupted request does (`in_flight`,
/// back to `pending` at the next start).
pub(super) async fn claim_all(
    writer: &mut SqliteConnection,
    claims: &[ClaimOp],
) -> Result<Vec<Claim>, QueueError> {
    let wanted: Vec<(&str, &str, i64)> = claims
        .iter()
        .map(|c| (c.target.token.as_str(), c.target.user_col(), ms(c.now)))
        .collect();
    // The rows are stamped with the latest `now` of the batch: the throttle counts a request
    // lost in a crash from this stamp, and later is the safe side.
    let latest = claims.iter().map(|c| ms(c.now)).max().unwrap_or_default();
    let raw = sqlx::query(&CLAIM_AND_COMMIT)
        .bind(serde_json::to_string(&wanted).expect("targets serialize"))
        .bind(latest)
        .fetch_all(&mut *writer)
        .await?;
    claims_from_rows(claims, &raw)
}

/// The claims' answers from the rows claimed for them (any backend's, read with
/// [`ROW_COLUMNS`]): each target's rows merged, per part, into its requests.
pub(super) fn claims_from_rows<R>(claims: &[ClaimOp], raw: &[R]) -> Result<Vec<Claim>, QueueError>
where
    R: ReadRow,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    // Per target: its readable rows, and the unreadable ones with their error.
    type Claimed = (Vec<Update>, Vec<(i64, String)>);
    let mut by_target: HashMap<Target, Claimed> = HashMap::new();
    for r in raw {
        match row_to_update(r) {
            Ok(row) => by_target.entry(row.target.clone()).or_default().0.push(row),
            // A row edited by hand into nonsense fails alone; its target's other rows go on.
            Err(QueueError::BadPatch { id, source }) => by_target
                .entry(row_target(r)?)
                .or_default()
                .1
                .push((
                    id,
                    format!("the stored patch is not valid JSON ({source}); drop this row or fix the patch and retry it"),
                )),
            // Cannot happen short of a changed schema.
            Err(e) => return Err(e),
        }
    }
    Ok(claims
        .iter()
        .map(|c| {
            let Some((mut rows, unreadable)) = by_target.remove(&c.target) else {
                return Claim::NotReady;
            };
            // RETURNING comes in no particular order; the merge needs firing order.
            rows.sort_by_key(|r| (r.fire_at, r.is_restore(), r.id));
            // A restore goes alone: after the firings before it, before those after it.
            let alone = match rows.iter().position(Update::is_restore) {
                Some(0) => 1,
                Some(k) => k,
                None => rows.len(),
            };
            let released = rows.split_off(alone).iter().map(|r| r.id).collect();
            let (mut batch, more) = match rows.first().and_then(|r| r.saved.clone()) {
                Some(saved) => {
                    let plan = restore_plan(rows[0].id, &saved);
                    let mut batch = part_batch(&c.target, rows, plan);
                    batch.restore = Some(saved);
                    (batch, Vec::new())
                }
                None => {
                    // One request per part, each merged apart: profile, DND, presence.
                    let mut by_part: BTreeMap<Part, Vec<Update>> = BTreeMap::new();
                    for row in rows {
                        by_part.entry(row.patch.part()).or_default().push(row);
                    }
                    let profile = by_part.remove(&Part::Profile).unwrap_or_default();
                    let plan = merge_rows(&profile, c.now);
                    let main = part_batch(&c.target, profile, plan);
                    let more = by_part
                        .into_values()
                        .map(|rows| {
                            let plan = merge_rows(&rows, c.now);
                            part_batch(&c.target, rows, plan)
                        })
                        .collect();
                    (main, more)
                }
            };
            batch.unreadable = unreadable;
            batch.released = released;
            batch.more = more;
            let nothing =
                batch.plan.patch.is_empty() && batch.more.iter().all(|b| b.plan.patch.is_empty());
            if nothing {
                Claim::NothingToSend(batch)
            } else {
                Claim::Send(batch)
            }
        })
        .collect())
}

/// The plan of a restore row `id`: it would send the saved status back. Whether it does is
/// the worker's to decide after a second read (`crate::restore::at_restore`).
fn restore_plan(id: i64, saved: &super::SavedRestore) -> MergePlan {
    let mut plan = MergePlan::default();
    plan.patch.status = Some(saved.saved.clone());
    plan.contributors.push(id);
    plan.status_from = Some(id);
    plan
}

/// Merge `rows` (in firing order) for a request at `now`.
fn merge_rows(rows: &[Update], now: DateTime<Utc>) -> MergePlan {
    let inputs: Vec<MergeInput> = rows
        .iter()
        .map(|r| MergeInput {
            id: r.id,
            patch: r.patch.clone(),
        })
        .collect();
    merge(&inputs, now.timestamp())
}

/// A batch of one part's `rows` with its `plan`, nothing else claimed with it.
fn part_batch(target: &Target, rows: Vec<Update>, plan: MergePlan) -> Batch {
    Batch {
        target: target.clone(),
        rows,
        plan,
        unreadable: Vec::new(),
        released: Vec::new(),
        restore: None,
        leave_restore: None,
        reads: Vec::new(),
        more: Vec::new(),
    }
}
