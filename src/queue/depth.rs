//! What `/metrics` shows of the queue itself (SPEC §7): rows per state and the backlog. One
//! read of the pool, which the daemon's scrape handler makes at most once a second.

use std::str::FromStr as _;

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{from_ms, ms, QueueError, SqliteQueue, State};

/// The queue's depth at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth {
    /// Rows per state, every state present (0 where none).
    pub per_state: Vec<(State, i64)>,
    /// `not_before` of the oldest row that is due and not sent yet (`pending` or
    /// `in_flight`); `None` when there is none.
    pub oldest_due: Option<DateTime<Utc>>,
}

impl SqliteQueue {
    /// Rows per state, and the oldest row due by `now` that is not sent yet.
    pub async fn depth(&self, now: DateTime<Utc>) -> Result<Depth, QueueError> {
        let counts = sqlx::query("SELECT state, count(*) AS n FROM updates GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut per_state: Vec<(State, i64)> = State::ALL.iter().map(|s| (*s, 0)).collect();
        for r in &counts {
            let state: String = r.try_get("state")?;
            let n: i64 = r.try_get("n")?;
            if let Ok(s) = State::from_str(&state) {
                if let Some(slot) = per_state.iter_mut().find(|(k, _)| *k == s) {
                    slot.1 = n;
                }
            }
        }
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT min(not_before) FROM updates
             WHERE state IN ('pending', 'in_flight') AND not_before <= ?",
        )
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(Depth {
            per_state,
            oldest_due: oldest.map(from_ms),
        })
    }
}
