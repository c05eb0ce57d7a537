//! The scheduler's rewinds of firings queued ahead, on PostgreSQL (see `queue/ahead.rs`).
//!
//! NOT BUILT YET: each method answers `QueueError::NotOnPostgres` until its statements
//! are written (issue 16).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::PgQueue;
use crate::queue::QueueError;

impl PgQueue {
    /// As on SQLite (`Queue::rewind_rules`).
    pub async fn rewind_rules(
        &self,
        _rules: &[(String, DateTime<Utc>)],
        _reason: &'static str,
        _now: DateTime<Utc>,
    ) -> Result<(u64, HashMap<String, DateTime<Utc>>), QueueError> {
        Err(QueueError::NotOnPostgres("rewind_rules"))
    }

    /// As on SQLite (`Queue::unsent_ahead`).
    pub async fn unsent_ahead(
        &self,
        _now: DateTime<Utc>,
    ) -> Result<HashMap<String, DateTime<Utc>>, QueueError> {
        Err(QueueError::NotOnPostgres("unsent_ahead"))
    }
}
