//! Firings enqueued ahead of their instant (SPEC §4): the scheduler commits a firing up to
//! [`crate::daemon::AHEAD`] before it is due, so that the commit is off the critical path at
//! the instant. A rule that changes, or goes, while its firing waits is rewound here: the
//! rows enqueued ahead for the old version are superseded (`config_changed`) and its mark
//! goes back to now, so the new version fires at its instants as if newly written.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{from_ms, ms, QueueError, SqliteQueue};

/// The reason recorded on a row enqueued ahead for a rule that a reload changed or removed.
pub const CONFIG_CHANGED: &str = "config_changed";

/// The reason recorded on a firing enqueued ahead whose instant passed while the daemon was
/// down, and that the catch-up rule does not apply (a later firing is, or it is too old).
pub const MISSED: &str = "missed";

impl SqliteQueue {
    /// Rewind each `(rule, to)` at `now`, in one transaction: supersede, for `reason`, the
    /// rule's firings after `to` that are still unsent (`pending`, or `held` for a dead token:
    /// a first row of a firing due after `to`, with every part of it), and set its mark back
    /// to `to` — but never before a firing of it that went further (claimed, sent, merged into
    /// another), so that no firing is enqueued twice. A restore that a sent status left
    /// waiting is not a firing and stays. Returns the rows superseded and each rule's mark as
    /// it now stands.
    pub async fn rewind_rules(
        &self,
        rules: &[(String, DateTime<Utc>)],
        reason: &'static str,
        now: DateTime<Utc>,
    ) -> Result<(u64, HashMap<String, DateTime<Utc>>), QueueError> {
        if rules.is_empty() {
            return Ok((0, HashMap::new()));
        }
        let pairs: Vec<(&str, i64)> = rules.iter().map(|(r, to)| (r.as_str(), ms(*to))).collect();
        let pairs = serde_json::to_string(&pairs).expect("pairs serialize");
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let superseded = sqlx::query(
                    "WITH r AS (SELECT value ->> 0 AS rule, value ->> 1 AS upto FROM json_each(?1)),
                          ahead AS (
                         SELECT u.id FROM updates AS u JOIN r ON u.rule = r.rule
                         WHERE u.state IN ('pending', 'held') AND u.parent IS NULL
                           AND u.saved IS NULL AND u.fire_at > r.upto)
                     UPDATE updates SET state = 'superseded', last_error = ?3,
                         updated_at = ?2, finished_at = ?2
                     WHERE state IN ('pending', 'held')
                       AND (id IN (SELECT id FROM ahead) OR parent IN (SELECT id FROM ahead))",
                )
                .bind(&pairs)
                .bind(ms(now))
                .bind(reason)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                let marks = sqlx::query(
                    "UPDATE rule_marks SET scheduled_until = max(r.upto, coalesce(
                         (SELECT max(u.fire_at) FROM updates AS u
                          WHERE u.rule = r.rule AND u.parent IS NULL AND u.saved IS NULL
                            AND u.fire_at > r.upto
                            AND NOT (u.state = 'superseded'
                                     AND coalesce(u.last_error, '') IN (?2, ?3))),
                         r.upto))
                     FROM (SELECT value ->> 0 AS rule, value ->> 1 AS upto FROM json_each(?1)) AS r
                     WHERE rule_marks.rule = r.rule AND rule_marks.scheduled_until > r.upto
                     RETURNING rule_marks.rule, rule_marks.scheduled_until",
                )
                .bind(&pairs)
                .bind(CONFIG_CHANGED)
                .bind(MISSED)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("rule")?, from_ms(r.try_get("scheduled_until")?))))
                .collect::<Result<HashMap<String, DateTime<Utc>>, QueueError>>()?;
                Ok((superseded, marks))
            })
        }))
        .await
    }

    /// Per rule, the instant of its firing enqueued ahead that is still unsent although its
    /// instant has passed by `now`: the first row of a firing at exactly the rule's mark (a
    /// firing enqueued on time or as a catch-up leaves the mark past its instant), pending and
    /// never tried.
    pub async fn unsent_ahead(
        &self,
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, DateTime<Utc>>, QueueError> {
        let rows = sqlx::query(
            "SELECT u.rule, u.fire_at FROM updates AS u JOIN rule_marks AS m ON m.rule = u.rule
             WHERE u.state = 'pending' AND u.parent IS NULL AND u.saved IS NULL
               AND u.attempts = 0 AND u.fire_at = m.scheduled_until AND u.fire_at <= ?1",
        )
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("rule")?, from_ms(r.try_get("fire_at")?))))
            .collect()
    }
}
