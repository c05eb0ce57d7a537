//! Restore rows (SPEC §6 "Restore"): how a saved status is stored, and the statements around
//! it. What to save and whether to put it back are decided in `crate::restore`; this file
//! only keeps the decisions durable.
//!
//! A target has at most one restore waiting: the first temporary status sent inserts it, due
//! at that status's end; a temporary status sent while it waits moves it to the later end and
//! keeps the status it saved (temporaries that overlap share one restore). It is a queue row
//! like any other, so it is throttled, ordered per target and survives any downtime.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::SqliteConnection;

use super::{from_ms, insert_firings, ms, NewUpdate, QueueError, SqliteQueue, Target};
use crate::profile::{Dnd, Patch, Presence, Status};
use crate::restore::PendingRestore;

/// What a restore row holds (its `saved` column, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRestore {
    /// The status from before the first temporary one: what goes back.
    pub saved: Status,
    /// The latest temporary status sent: at the restore, a status equal to it is still ours.
    pub temporary: Status,
    /// When the latest temporary status went out (Unix milliseconds): a status that is not
    /// temporary sent after this instant overtakes the restore.
    pub since: i64,
}

impl SavedRestore {
    /// The restore as `crate::restore` decides on it, due at `due`.
    pub fn pending(&self, due: DateTime<Utc>) -> PendingRestore {
        PendingRestore {
            saved: self.saved.clone(),
            temporary: self.temporary.clone(),
            due: due.timestamp(),
        }
    }
}

/// The restore a temporary status leaves once it is sent (see [`super::Batch::leave_restore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveRestore {
    /// The target's restore row already waiting, to move; `None`: insert one.
    pub existing: Option<i64>,
    /// What it puts back, and when.
    pub restore: PendingRestore,
    /// The rule of the temporary status, shown by `queue` on the restore row.
    pub rule: Option<String>,
}

impl LeaveRestore {
    /// The restore row's `saved` column (JSON) and its due instant (Unix ms), for a temporary
    /// status that went out at `sent_at` (Unix ms).
    pub(super) fn saved_row(&self, sent_at: i64) -> (String, i64) {
        let r = &self.restore;
        let saved = SavedRestore {
            saved: r.saved.clone(),
            temporary: r.temporary.clone(),
            since: sent_at,
        };
        let saved = serde_json::to_string(&saved).expect("a saved restore serializes");
        (saved, r.due.saturating_mul(1000))
    }
}

/// The waiting restore of a target: its row id and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingRestore {
    /// Row id.
    pub id: i64,
    /// What it puts back, and when.
    pub restore: PendingRestore,
}

impl SqliteQueue {
    /// The restore waiting for `target`, if any. A restore the worker has claimed with a
    /// batch of firings (released again when that batch finishes) still counts as waiting:
    /// only that worker claims the target's rows.
    pub async fn waiting_restore(
        &self,
        target: &Target,
    ) -> Result<Option<WaitingRestore>, QueueError> {
        let row: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT id, saved, fire_at FROM updates
             WHERE token = ? AND user = ? AND saved IS NOT NULL
               AND state IN ('pending', 'in_flight')
             ORDER BY id DESC LIMIT 1",
        )
        .bind(&target.token)
        .bind(target.user_col())
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, saved, due)) = row else {
            return Ok(None);
        };
        let saved = parse_saved(id, &saved)?;
        Ok(Some(WaitingRestore {
            id,
            restore: saved.pending(from_ms(due)),
        }))
    }

    /// Whether a status that is not temporary (a rule without `restore`, a `set` without
    /// `--restore`) was sent to `target` after `since` (Unix ms): it overtakes the restore.
    pub async fn overtaken_since(&self, target: &Target, since: i64) -> Result<bool, QueueError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM updates
             WHERE token = ? AND user = ? AND state = 'sent' AND restore = 0 AND saved IS NULL
               AND json_extract(patch, '$.status') IS NOT NULL AND finished_at > ?)",
        )
        .bind(&target.token)
        .bind(target.user_col())
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }

    /// `set --end` (and a calendar event that went away): end `target`'s temporary status
    /// at `now`. Its waiting restore is made due now (it goes out at once, with the usual
    /// checks), a presence the temporary status set to `away` goes back to `auto` now, and a
    /// DND snooze still running is ended (`dnd.endSnooze`). One transaction. Returns the
    /// restore's id, or `None` when none waits.
    pub async fn end_temporary_now(
        &self,
        target: &Target,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, QueueError> {
        let target = target.clone();
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let t = ms(now);
                let restore: Option<i64> = sqlx::query_scalar(
                    "UPDATE updates SET fire_at = ?3, not_before = ?3, updated_at = ?3
                     WHERE token = ?1 AND user = ?2 AND saved IS NOT NULL AND state = 'pending'
                     RETURNING id",
                )
                .bind(&target.token)
                .bind(target.user_col())
                .bind(t)
                .fetch_optional(&mut *conn)
                .await?;
                // The `auto` a temporary `away` left due at its end (a part of its firing).
                let moved = sqlx::query(
                    "UPDATE updates SET fire_at = ?3, not_before = ?3, updated_at = ?3
                     WHERE token = ?1 AND user = ?2 AND state = 'pending' AND parent IS NOT NULL
                       AND json_extract(patch, '$.presence') = 'auto' AND fire_at > ?3",
                )
                .bind(&target.token)
                .bind(target.user_col())
                .bind(t)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                // That `auto` may be gone (a calendar supersedes the rows of an event that
                // went away): then a temporary `away` still shown is set back now.
                let away: bool = moved == 0
                    && sqlx::query_scalar(
                        "SELECT coalesce((SELECT json_extract(p.patch, '$.presence') = 'away'
                                                 AND f.restore = 1
                                          FROM updates AS p JOIN updates AS f ON f.id = p.parent
                                          WHERE p.token = ?1 AND p.user = ?2 AND p.state = 'sent'
                                            AND json_extract(p.patch, '$.presence') IS NOT NULL
                                          ORDER BY p.finished_at DESC, p.id DESC LIMIT 1), 0)",
                    )
                    .bind(&target.token)
                    .bind(target.user_col())
                    .fetch_one(&mut *conn)
                    .await?;
                let snoozed: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM updates
                     WHERE token = ?1 AND user = ?2 AND state IN ('sent', 'pending', 'in_flight')
                       AND json_extract(patch, '$.dnd.snooze.until') > ?3)",
                )
                .bind(&target.token)
                .bind(target.user_col())
                .bind(now.timestamp())
                .fetch_one(&mut *conn)
                .await?;
                if snoozed || away {
                    let end = NewUpdate {
                        rule: None,
                        target: target.clone(),
                        fire_at: now,
                        patch: Patch {
                            dnd: snoozed.then_some(Dnd::End),
                            presence: away.then_some(Presence::Auto),
                            ..Patch::default()
                        },
                        respect_manual: false,
                        restore: false,
                    };
                    insert_firings(conn, &[(&end, None)], now).await?;
                }
                Ok(restore)
            })
        }))
        .await
    }
}

/// Read a restore row's `saved` column.
pub(super) fn parse_saved(id: i64, text: &str) -> Result<SavedRestore, QueueError> {
    serde_json::from_str(text).map_err(|source| QueueError::BadPatch { id, source })
}

/// Write the restore that a sent temporary status leaves for `target`, inside the finish's
/// transaction: move the waiting one, or insert it. `sent_at` is when the temporary status
/// went out (Unix ms).
pub(super) async fn leave_restore(
    conn: &mut SqliteConnection,
    target: &Target,
    leave: &LeaveRestore,
    sent_at: i64,
    now: i64,
) -> Result<(), QueueError> {
    let (saved, due) = leave.saved_row(sent_at);
    if let Some(id) = leave.existing {
        let moved = sqlx::query(
            "UPDATE updates SET saved = ?2, fire_at = ?3, not_before = ?3, updated_at = ?4
             WHERE id = ?1 AND state = 'pending'",
        )
        .bind(id)
        .bind(&saved)
        .bind(due)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        // Gone meanwhile (`queue drop`): the temporary status still needs its restore.
        if moved.rows_affected() == 1 {
            return Ok(());
        }
    }
    let patch = serde_json::to_string(&Patch::default()).expect("a patch serializes");
    sqlx::query(
        "INSERT INTO updates (rule, token, user, fire_at, patch, respect_manual, state,
                              not_before, created_at, updated_at, saved)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, 'pending', ?4, ?6, ?6, ?7)",
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
