//! The reads and edits of temporary statuses' restores on PostgreSQL (see `queue/restore.rs`).
//!
//! NOT BUILT YET: each method answers `QueueError::NotOnPostgres` until its statements
//! are written (issue 16).

use chrono::{DateTime, Utc};

use super::PgQueue;
use crate::queue::{QueueError, Target, WaitingRestore};

impl PgQueue {
    /// As on SQLite (`Queue::waiting_restore`).
    pub async fn waiting_restore(
        &self,
        _target: &Target,
    ) -> Result<Option<WaitingRestore>, QueueError> {
        Err(QueueError::NotOnPostgres("waiting_restore"))
    }

    /// As on SQLite (`Queue::overtaken_since`).
    pub async fn overtaken_since(&self, _target: &Target, _since: i64) -> Result<bool, QueueError> {
        Err(QueueError::NotOnPostgres("overtaken_since"))
    }

    /// As on SQLite (`Queue::end_temporary_now`).
    pub async fn end_temporary_now(
        &self,
        _target: &Target,
        _now: DateTime<Utc>,
    ) -> Result<Option<i64>, QueueError> {
        Err(QueueError::NotOnPostgres("end_temporary_now"))
    }
}
