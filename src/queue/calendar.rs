//! The queue's side of calendars (SPEC §5): rows that name the calendar and change they
//! were enqueued for, each fetch's supersede-and-enqueue as one transaction, and each
//! calendar's last good copy. The queue does not know what a calendar is: the daemon's
//! calendar source decides (with the pure `calendar::reconcile`) and hands over plain rows.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};

use super::{from_ms, insert_firings, ms, NewUpdate, QueueError, SqliteQueue, State, Target};

/// The reason recorded on a row superseded because the feed no longer wants its change.
pub const CALENDAR_CHANGED: &str = "calendar_changed";

/// One of a calendar's rows, as a fetch reconciles against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarRow {
    /// Row id.
    pub id: i64,
    /// The change it was enqueued for.
    pub key: String,
    /// Its firing instant.
    pub fire_at: DateTime<Utc>,
    /// Its state.
    pub state: State,
    /// Whether it was superseded as [`CALENDAR_CHANGED`].
    pub calendar_changed: bool,
}

/// A calendar's firing to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarFiring {
    /// The row (its `rule` is ignored: calendar rows have none).
    pub update: NewUpdate,
    /// The change's key.
    pub key: String,
    /// The UID of the event it shows.
    pub uid: String,
}

/// What the calendar's last status shown is, if Slack still shows it: the target's last
/// sent status came from this calendar and has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownRow {
    /// The change's key.
    pub key: String,
}

/// A calendar's last good copy, as stored: the daemon's own serialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarCopy {
    /// The daemon's JSON of the expanded occurrences (and what they were expanded with).
    pub occurrences: String,
    /// JSON of the response's validators (ETag, Last-Modified).
    pub validators: String,
    /// The window the occurrences cover.
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// When the feed was fetched.
    pub fetched_at: DateTime<Utc>,
}

impl SqliteQueue {
    /// Every row enqueued for `calendar`, in firing order.
    pub async fn calendar_rows(&self, calendar: &str) -> Result<Vec<CalendarRow>, QueueError> {
        let rows = sqlx::query(
            "SELECT id, change_key, fire_at, state, last_error FROM updates
             WHERE calendar = ? ORDER BY fire_at, id",
        )
        .bind(calendar)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                let state = state.parse().unwrap_or(State::Failed);
                let error: Option<String> = r.try_get("last_error")?;
                Ok(CalendarRow {
                    id: r.try_get("id")?,
                    key: r
                        .try_get::<Option<String>, _>("change_key")?
                        .unwrap_or_default(),
                    fire_at: from_ms(r.try_get("fire_at")?),
                    calendar_changed: state == State::Superseded
                        && error.as_deref() == Some(CALENDAR_CHANGED),
                    state,
                })
            })
            .collect()
    }

    /// The row of `calendar` whose status Slack shows `target` at `now`: the target's last
    /// sent row with a status is this calendar's, and its status is not a clear and has not
    /// expired.
    pub async fn calendar_shown(
        &self,
        calendar: &str,
        target: &Target,
        now: DateTime<Utc>,
    ) -> Result<Option<ShownRow>, QueueError> {
        let row = sqlx::query(
            "SELECT calendar, change_key, patch ->> '$.status.expiration' AS expiration,
                    (patch ->> '$.status.text') || (patch ->> '$.status.emoji') AS shown
             FROM updates
             WHERE token = ? AND user = ? AND state = 'sent' AND patch ->> '$.status' IS NOT NULL
             ORDER BY finished_at DESC, id DESC LIMIT 1",
        )
        .bind(&target.token)
        .bind(target.user_col())
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let owner: Option<String> = r.try_get("calendar")?;
        let expiration: Option<i64> = r.try_get("expiration")?;
        let live = expiration.is_none_or(|e| e == 0 || e > now.timestamp());
        // A clear shows nothing: there is nothing of the calendar's to end.
        let shown: Option<String> = r.try_get("shown")?;
        let cleared = shown.is_none_or(|s| s.is_empty());
        if owner.as_deref() != Some(calendar) || !live || cleared {
            return Ok(None);
        }
        Ok(Some(ShownRow {
            key: r
                .try_get::<Option<String>, _>("change_key")?
                .unwrap_or_default(),
        }))
    }

    /// Apply one fetch of `calendar` as one transaction: supersede its `supersede` rows that
    /// are still waiting (reason [`CALENDAR_CHANGED`]), then enqueue `enqueue` in order.
    /// Returns the new rows' ids.
    pub async fn apply_calendar(
        &self,
        calendar: &str,
        supersede: Vec<i64>,
        enqueue: Vec<CalendarFiring>,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, QueueError> {
        if supersede.is_empty() && enqueue.is_empty() {
            return Ok(Vec::new());
        }
        let calendar = calendar.to_string();
        self.write(Box::new(move |conn| {
            Box::pin(async move { apply(conn, &calendar, &supersede, &enqueue, now).await })
        }))
        .await
    }

    /// The last good copy of `calendar`, if one was stored.
    pub async fn calendar_copy(&self, calendar: &str) -> Result<Option<CalendarCopy>, QueueError> {
        let row = sqlx::query(
            "SELECT occurrences, validators, window_from, window_to, fetched_at
             FROM calendar_copies WHERE calendar = ?",
        )
        .bind(calendar)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CalendarCopy {
                occurrences: r.try_get("occurrences")?,
                validators: r.try_get("validators")?,
                window: (
                    from_ms(r.try_get("window_from")?),
                    from_ms(r.try_get("window_to")?),
                ),
                fetched_at: from_ms(r.try_get("fetched_at")?),
            })
        })
        .transpose()
    }

    /// Keep `copy` as the last good copy of `calendar`, replacing the one before.
    pub async fn store_calendar_copy(
        &self,
        calendar: &str,
        copy: &CalendarCopy,
    ) -> Result<(), QueueError> {
        let (calendar, copy) = (calendar.to_string(), copy.clone());
        self.write_one(
            "INSERT INTO calendar_copies
                 (calendar, occurrences, validators, window_from, window_to, fetched_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (calendar) DO UPDATE SET occurrences = ?2, validators = ?3,
                 window_from = ?4, window_to = ?5, fetched_at = ?6",
            move |q| {
                q.bind(calendar)
                    .bind(copy.occurrences)
                    .bind(copy.validators)
                    .bind(ms(copy.window.0))
                    .bind(ms(copy.window.1))
                    .bind(ms(copy.fetched_at))
            },
        )
        .await
        .map(drop)
    }

    /// Supersede the waiting rows of calendars not in `keep` (reason `calendar_removed`):
    /// a calendar taken out of the config sets no more statuses. Returns how many.
    pub async fn supersede_removed_calendars(
        &self,
        keep: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64, QueueError> {
        let keep = serde_json::to_string(keep).expect("names serialize");
        self.write_one(
            "UPDATE updates SET state = 'superseded', last_error = 'calendar_removed',
                 updated_at = ?2, finished_at = ?2
             WHERE calendar IS NOT NULL AND state IN ('pending', 'held')
               AND calendar NOT IN (SELECT value FROM json_each(?1))",
            move |q| q.bind(keep).bind(ms(now)),
        )
        .await
    }

    /// Note that `calendar`'s feed answered "not modified" at `now`: its copy is as good as
    /// fetched then.
    pub async fn touch_calendar_copy(
        &self,
        calendar: &str,
        now: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        let calendar = calendar.to_string();
        self.write_one(
            "UPDATE calendar_copies SET fetched_at = ?2 WHERE calendar = ?1",
            move |q| q.bind(calendar).bind(ms(now)),
        )
        .await
        .map(drop)
    }

    /// When each calendar's feed last answered (a new copy or "not modified"), by name.
    pub async fn calendar_fetches(
        &self,
    ) -> Result<std::collections::HashMap<String, DateTime<Utc>>, QueueError> {
        let rows = sqlx::query("SELECT calendar, fetched_at FROM calendar_copies")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("calendar")?, from_ms(r.try_get("fetched_at")?))))
            .collect()
    }

    /// Forget the copies of calendars no longer configured.
    pub async fn drop_calendar_copies_except(&self, keep: &[String]) -> Result<u64, QueueError> {
        let keep = serde_json::to_string(keep).expect("names serialize");
        self.write_one(
            "DELETE FROM calendar_copies WHERE calendar NOT IN (SELECT value FROM json_each(?))",
            move |q| q.bind(keep),
        )
        .await
    }
}

/// The statements of [`Queue::apply_calendar`], inside the writer's transaction.
async fn apply(
    conn: &mut SqliteConnection,
    calendar: &str,
    supersede: &[i64],
    enqueue: &[CalendarFiring],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, QueueError> {
    let t = ms(now);
    if !supersede.is_empty() {
        sqlx::query(
            "UPDATE updates SET state = 'superseded', last_error = ?1, updated_at = ?2,
                 finished_at = ?2
             WHERE calendar = ?3 AND state IN ('pending', 'held')
               AND id IN (SELECT value FROM json_each(?4))",
        )
        .bind(CALENDAR_CHANGED)
        .bind(t)
        .bind(calendar)
        .bind(serde_json::to_string(supersede).expect("ids serialize"))
        .execute(&mut *conn)
        .await?;
    }
    let rows: Vec<_> = enqueue
        .iter()
        .map(|f| (&f.update, Some((calendar, f.key.as_str(), f.uid.as_str()))))
        .collect();
    let ids = insert_firings(conn, &rows, now).await?;
    Ok(ids)
}
